"""Atomic file output: a file appears complete or not at all.

Writers go to a temporary sibling and are renamed into place only on success, so an
interrupted or failed command never leaves a half-written result behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from analysis.errors import InputError


def ensure_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) and check it is writable, or raise one clear InputError."""
    directory = Path(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create output folder {directory}: {error.strerror}") from None
    if not os.access(directory, os.W_OK):
        raise InputError(f"output folder {directory} is not writable")
    return directory


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` if the block succeeds."""
    target = Path(path)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                         suffix=target.suffix)
    os.close(handle)
    temporary = Path(temporary)
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)
