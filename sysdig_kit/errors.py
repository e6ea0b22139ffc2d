"""Errors a user can act on: the CLI prints them as one line, never a traceback."""


class KitError(Exception):
    """A problem with the user's input or environment, explained in one line."""
