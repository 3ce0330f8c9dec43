"""`~/.claude.json` extra usage (design §4.5). STUB."""


def extra_usage(cfg):
    return {"enabled": None, "reason": None, "path": None}
