"""Transcript signal (design §4.3). STUB: replaced by the full incremental scanner."""

from dataclasses import dataclass, field


@dataclass
class ScanResult:
    samples: list = field(default_factory=list)  # policy.Sample with wall=True, percent=100
    last_activity: float | None = None  # newest mtime of any transcript file
    problems: list = field(default_factory=list)


def scan(claude_dirs, state_dir, now, spilled_intervals=()):
    return ScanResult()
