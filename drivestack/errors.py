"""Errors a user can fix: the CLI prints them as one line and exits 2, with no traceback."""


class UserError(Exception):
    """A bad input: the message names the file or option, the field and the fix."""
