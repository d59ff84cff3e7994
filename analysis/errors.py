"""Errors that mean "the user gave us something we cannot use".

The CLI turns these into one clear line and a non-zero exit instead of a traceback;
anything else that escapes is a bug and keeps its traceback.
"""


class InputError(ValueError):
    """Bad data or arguments: a missing file, NaN in data, an impossible parameter (exit 1)."""


class ConfigError(InputError):
    """A malformed run configuration or command-line usage error (exit 2)."""
