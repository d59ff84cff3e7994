"""Atomic file output: a file appears complete or not at all.

Writers go to a temporary sibling and are renamed into place only on success, so an
interrupted or failed command never leaves a half-written result behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from clsreg.analysis.errors import InputError, RunError


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


# A temp file of an atomic write older than this belongs to a killed writer: the next write
# of the same target removes it.
STALE_TEMP_SECONDS = 600.0


def _user_file_mode() -> int:
    """``0o666`` less the process umask: the mode ``open()`` would give a new file."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def check_outputs(paths: list[str | Path]) -> None:
    """Refuse, before anything is written, outputs whose place is taken by a folder or by
    something that is not a regular file (a device such as /dev/null, a pipe, a socket),
    which an atomic rename would replace."""
    for path in map(Path, paths):
        if path.is_dir():
            raise RunError(f"cannot write {path}: a folder of that name is in the way")
        if path.exists() and not path.is_file():
            raise InputError(f"cannot write {path}: it is not a regular file (a device, pipe "
                             "or socket); give the path of a file")


def sweep_stale_temps(target: Path, max_age: float = STALE_TEMP_SECONDS) -> int:
    """Remove temp files of ``target`` left by writers killed mid-write; count them."""
    removed = 0
    now = time.time()
    for leftover in target.parent.glob(f".{target.name}.*{target.suffix}"):
        with contextlib.suppress(OSError):
            if leftover.is_file() and now - leftover.stat().st_mtime > max_age:
                leftover.unlink()
                removed += 1
    return removed


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` if the block succeeds.

    The result gets the user's normal file mode (umask), not the temp file's 0600. A folder
    in the way or a refused write is one :class:`RunError` naming the file. A symlink is
    followed: the file it points to is replaced and the link stays.
    """
    target = Path(os.path.realpath(path)) if Path(path).is_symlink() else Path(path)
    check_outputs([target])
    sweep_stale_temps(target)
    try:
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                             suffix=target.suffix)
    except OSError as error:
        raise RunError(f"cannot write {target}: {error.strerror}") from None
    os.close(handle)
    temporary = Path(temporary)
    try:
        yield temporary
        os.chmod(temporary, _user_file_mode())
        os.replace(temporary, target)
    except OSError as error:
        raise RunError(f"cannot write {target}: {error.strerror or error}") from None
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file's bytes: what identifies data given by path (a path's content
    can change between two runs)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def inside_folder(folder: str | Path, relative: str | Path, where: str) -> Path:
    """``folder / relative`` if it stays inside ``folder`` once ``..`` and symlinks are
    resolved; otherwise one InputError naming ``where`` (a data row may name only files of
    its own data folder, never ``../secret.jpg``, an absolute path or a link out of it)."""
    root = Path(os.path.realpath(folder))
    path = Path(folder) / relative
    resolved = Path(os.path.realpath(path))
    if not resolved.is_relative_to(root):
        raise InputError(f"{where}: {relative} lies outside the data folder {folder}")
    return path


def check_input_file(path: str | Path, what: str = "file") -> Path:
    """``path`` if it is a readable file; otherwise one clear InputError naming it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such {what}: {path}")
    if not path.is_file():
        raise InputError(f"{what} {path} is a folder, not a file")
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read {what} {path}: permission denied")
    return path


def read_csv_file(path: str | Path, what: str = "CSV file", **options):
    """A CSV file (header row) as a pandas DataFrame, or one InputError naming the file:
    missing, unreadable, not UTF-8 text, binary, empty or malformed."""
    import pandas as pd

    path = check_input_file(path, what)
    with open(path, "rb") as handle:
        if b"\0" in handle.read(65536):
            raise InputError(f"cannot read {path} as CSV: it is not UTF-8 text (binary data "
                             "or UTF-16)")
    try:
        return pd.read_csv(path, **options)
    except UnicodeDecodeError:
        raise InputError(f"cannot read {path} as CSV: it is not UTF-8 text") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, ValueError, OSError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"cannot read {path} as CSV: {first}") from None
