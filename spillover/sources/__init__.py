"""Plan-quota signals (design §4). Each module returns policy.Sample objects, never raw answers."""
