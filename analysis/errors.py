"""Errors the user can act on, and the one exit-code rule of the command line.

The CLI turns these into one ``Error: ...`` line instead of a traceback; anything else that
escapes is a bug and keeps its traceback.

* :class:`InputError` (exit 2): what the user gave cannot be used — a wrong option, a
  malformed or unreadable config or data file, a missing file, NaN in data, a store that is
  corrupt or of the wrong kind. Nothing has been written.
* :class:`ConfigError` (exit 2): an :class:`InputError` in a run's configuration (options,
  grids, devices).
* :class:`RunError` (exit 1): a failure while running — training diverged, an output cannot
  be written, another run holds the output folder. Finished work stays saved.
"""

EXIT_RUN_ERROR = 1
EXIT_INPUT_ERROR = 2
EXIT_INTERRUPTED = 130


class InputError(ValueError):
    """Bad input: options, config or data files, data (exit 2)."""


class ConfigError(InputError):
    """A malformed run configuration or command-line usage error (exit 2)."""


class RunError(RuntimeError):
    """A failure at run time, after the input was accepted (exit 1)."""


def exit_code(error: Exception) -> int:
    """The exit code of a user-facing error (see the module docstring)."""
    return EXIT_RUN_ERROR if isinstance(error, RunError) else EXIT_INPUT_ERROR
