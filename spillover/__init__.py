"""spillover: flip Claude Code from a Pro/Max plan to a paid target before the usage wall, and back."""

__version__ = "0.1.0"
