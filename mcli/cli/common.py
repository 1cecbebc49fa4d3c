"""What every command shares: the user-facing error type."""


class CLIError(Exception):
    """A problem the user can fix, shown as one `mcli: error: ...` line."""
