"""One exception hierarchy, rooted in SpilloverError; `cli.main()` turns each into a one-line error."""


class SpilloverError(Exception):
    """Base of every error spillover raises on purpose."""

    exit_code = 1


class ConfigError(SpilloverError):
    """A configuration value is missing or wrong; the message names the key, the value and what is allowed."""


class UsageError(SpilloverError):
    """The command line is wrong."""

    exit_code = 2


class SourceError(SpilloverError):
    """An outside service could not be read. The message is already redacted."""

    def __init__(self, message, *, status=None, retry_after=None, kind="error"):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.kind = kind  # error | auth | rate_limited | expired | unavailable
