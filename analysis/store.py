"""The results store: one SQLite file, one row per trained model, written atomically.

Each row is keyed by a string that names the run completely (config and seed), so a
restarted sweep skips exactly the keys already present. Rows of one finished batch are
inserted in a single transaction: a run killed at any moment leaves either all of a
batch or none of it, never a half-written file. One writer at a time (a file lock); readers
never change the file, except to roll back a batch whose writer was killed inside its commit
(under the writers' lock), which leaves the file as it was before that batch. Every row
records its config, seed, metrics, package version and git revision; per-sample arrays
(predictions) ride along as compressed ``.npz`` bytes. Rows are checked when read
(:mod:`analysis.rows`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import NoReturn

import numpy as np
from clsreg.analysis.errors import ConfigError, InputError, RunError
from clsreg.analysis.rows import KINDS, row_problem

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    config TEXT NOT NULL,
    seed INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    arrays BLOB,
    version TEXT NOT NULL,
    git_revision TEXT NOT NULL,
    created REAL NOT NULL
)
"""


@cache
def package_version() -> str:
    """The installed clsreg version ("unknown" when run from an uninstalled tree)."""
    try:
        return metadata.version("clsreg")
    except metadata.PackageNotFoundError:
        return "unknown"


PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@cache
def git_revision(root: Path = PACKAGE_ROOT) -> str:
    """The git commit of the source tree, with ``-dirty`` if its code has uncommitted changes.

    Changes under ``results/`` do not count: the committed stores are data, and a run that
    resumes into one (the way a long grid is finished across sessions) changes that file
    but not the code that trains. A copy of the tree without ``.git`` (a remote GPU box, an
    unpacked sdist) reports ``CLSREG_GIT_REVISION`` from the environment, or "unknown".
    """
    fallback = os.environ.get("CLSREG_GIT_REVISION", "unknown")
    if not (root / ".git").exists():
        return fallback
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
             ".", ":(exclude)results"],
            capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return fallback
    return rev + ("-dirty" if dirty else "")


@dataclass
class Record:
    """One trained model's result."""

    key: str
    kind: str
    config: dict
    seed: int
    metrics: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def _pack(arrays: dict[str, np.ndarray]) -> bytes | None:
    if not arrays:
        return None
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _unpack(blob: bytes | None) -> dict[str, np.ndarray]:
    if blob is None:
        return {}
    with np.load(io.BytesIO(blob)) as archive:
        return {name: archive[name] for name in archive.files}


def _json(value: dict) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=True)


def _first_line(error: Exception) -> str:
    """SQLite's message on one line (``quick_check`` reports one line per problem)."""
    lines = [line for line in str(error).splitlines() if line and not line.startswith("***")]
    more = f" and {len(lines) - 1} more problems" if len(lines) > 1 else ""
    return (lines[0] if lines else type(error).__name__) + more


def _remove_store_file(path: Path) -> None:
    """Delete a store file (and SQLite's side files)."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _remove_empty_folders(folders: list[Path]) -> None:
    """Remove ``folders`` (made outermost first) innermost first, while they are empty."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            break


def _require_regular_file(path: Path) -> None:
    """Refuse a store path that is a FIFO, socket or device, without opening it."""
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise InputError(f"cannot use {path}: {error.strerror}") from None
    if not stat.S_ISREG(mode):
        what = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else
                "a socket" if stat.S_ISSOCK(mode) else
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file")
        raise InputError(f"{path} is {what}, not a results store")


def _lock_store(path: Path):
    """The writers' exclusive lock on the store file (None where the platform has none);
    held by another run: the usual one-line refusal."""
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform: no concurrency guard
        return None
    try:
        lock = open(path, "ab")  # noqa: SIM115 (held by the caller, closed to release)
    except OSError as error:
        raise InputError(f"cannot open results store {path}: {error.strerror}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise RunError(f"another clsreg run is writing to {path.parent}; wait for it "
                       "to finish or use another --out") from None
    return lock


class ResultsStore:
    """``DIR/results.sqlite``: append-only rows of trained models, resumable by key.

    Opened with ``create=False`` the store is read-only (SQLite ``mode=ro``): a command that
    reads never changes the file (but for rolling back a killed writer's unfinished batch,
    :meth:`_finish_killed_write`), and a file that is not a clsreg store, a store path that
    is not a regular file (a FIFO, a device) and a damaged row (:meth:`records`) are
    refused. Opened
    for writing, the store takes an exclusive lock on the file for its lifetime, so a second
    run on the same folder is refused instead of redoing the first one's work; the lock dies
    with the process, even under ``kill -9``. A store (and folders) created by a run that
    then fails before writing a row is removed again. Corruption, from the first check or
    any later query, is one :class:`InputError`; a write the disk refuses is a
    :class:`RunError`.
    """

    FILENAME = "results.sqlite"
    # Seconds a reader waits for a live writer's commit before giving up.
    BUSY_TIMEOUT = 60.0

    def __init__(self, directory: str | Path, create: bool = True):
        # A symlinked store is followed: its target is read and written (and removed only if
        # this run created it), and the link itself is never deleted.
        self.path = Path(directory) / self.FILENAME
        self.writable = create
        self._created: list[Path] = []
        self._new_file = False
        self._rows_written = 0
        self._lock = None
        self._owns_file = False
        self._connection = None
        try:
            if self.path.is_symlink():
                self.path = Path(os.path.realpath(self.path))
            is_dir, exists = self.path.is_dir(), self.path.exists()
        except OSError as error:  # a name too long, a component that is a file, …
            raise InputError(f"cannot use {self.path}: {error.strerror}") from None
        if is_dir:
            raise InputError(f"{self.path} is a folder, not a results store")
        if exists:
            _require_regular_file(self.path)  # before any open: opening a FIFO blocks
        if not create:
            if not exists:
                raise InputError(f"no results store at {self.path}")
            self._finish_killed_write()
            self._connect(self.path.resolve().as_uri() + "?mode=ro")
            return
        self._new_file = not exists
        try:
            self._make_folders(self.path.parent)
            self._take_lock()
            self._connect(str(self.path))
            with self._guard():
                self._connection.execute(SCHEMA)
                self._connection.commit()
        except BaseException:
            self._abandon()
            raise

    def _make_folders(self, folder: Path) -> None:
        missing = []
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for path in reversed(missing):
            try:
                path.mkdir()
            except OSError as error:
                raise InputError(f"cannot create output folder {path}: "
                                 f"{error.strerror}") from None
            self._created.append(path)

    def _take_lock(self) -> None:
        self._lock = _lock_store(self.path)
        self._owns_file = self._new_file

    def _finish_killed_write(self) -> None:
        """Roll back the write of a run killed inside a commit, so that a reader can read.

        Such a run leaves a hot journal (``results.sqlite-journal``) that SQLite replays
        only on a connection that may write, so a read-only open would fail. Under the
        writers' lock the journal is rolled back, which restores the store to its state
        before the killed write, exactly as the next writer would; then the store is read
        read-only as always. A run that holds the lock is alive, so a journal beside it is
        its transaction in progress, not a killed one: that is left to SQLite's own locks
        (the read waits for the commit), so reading beside a sweep still works.
        """
        journal = Path(f"{self.path}-journal")
        if not os.path.lexists(journal):
            return
        _require_regular_file(journal)  # SQLite would open a FIFO journal and block
        if journal.stat().st_size == 0:
            return
        unfinished = (f"results store {self.path} holds a write left unfinished by a killed "
                      "run, and rolling it back failed")
        try:
            lock = _lock_store(self.path)
        except RunError:  # a live writer: its journal is not hot
            return
        except InputError as error:  # the file cannot be opened for writing
            raise RunError(f"{unfinished} ({error}); make the folder writable or run this "
                           "on a copy") from None
        try:
            connection = sqlite3.connect(str(self.path), timeout=self.BUSY_TIMEOUT)
            try:
                connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                connection.close()
        except sqlite3.OperationalError as error:
            if "locked" in str(error):
                raise RunError(f"another clsreg run is writing to {self.path.parent}; wait "
                               "for it to finish") from None
            raise RunError(f"{unfinished} ({_first_line(error)}); make the folder writable "
                           "or run this on a copy") from None
        except sqlite3.DatabaseError as error:
            raise InputError(f"results store {self.path} is unreadable or corrupt "
                             f"({_first_line(error)}); move it away or use another "
                             "folder") from None
        finally:
            if lock is not None:
                lock.close()

    def _connect(self, target: str) -> None:
        try:
            self._connection = sqlite3.connect(target, timeout=self.BUSY_TIMEOUT,
                                               uri=target.startswith("file:"))
            with self._guard():
                check = self._connection.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise sqlite3.DatabaseError(check)
                tables = {row[0] for row in self._connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.Error as error:  # connect itself (quick_check runs guarded)
            raise InputError(f"results store {self.path} is unreadable or corrupt "
                             f"({_first_line(error)}); move it away or use another "
                             "folder") from None
        if tables and "results" not in tables or not self.writable and not tables:
            raise InputError(f"{self.path} is not a clsreg results store")

    @contextlib.contextmanager
    def _guard(self):
        """SQLite errors as one clear error: a refused write (disk full, read-only file
        system) is a :class:`RunError`, anything else corruption (:class:`InputError`)."""
        try:
            yield
        except sqlite3.OperationalError as error:
            if "locked" in str(error):  # a live writer's commit outlasted BUSY_TIMEOUT
                raise RunError(f"another clsreg run is writing to {self.path.parent}; wait "
                               "for it to finish") from None
            if self.writable and any(text in str(error) for text in (
                    "disk", "readonly", "read-only", "unable to open", "I/O")):
                raise RunError(f"cannot write results store {self.path}: "
                               f"{_first_line(error)}") from None
            raise InputError(f"results store {self.path} is unreadable or corrupt "
                             f"({_first_line(error)}); move it away or use another "
                             "folder") from None
        except sqlite3.DatabaseError as error:
            raise InputError(f"results store {self.path} is unreadable or corrupt "
                             f"({_first_line(error)}); move it away or use another "
                             "folder") from None

    def _abandon(self) -> None:
        self.close()
        if self._owns_file and self._rows_written == 0:
            _remove_store_file(self.path)
        _remove_empty_folders(self._created)  # a kept store keeps its folder non-empty

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._lock is not None:
            self._lock.close()  # releases the lock
            self._lock = None

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abandon()

    def done_keys(self) -> set[str]:
        with self._guard():
            return {row[0] for row in self._connection.execute("SELECT key FROM results")}

    def kinds(self) -> set[str]:
        """The kinds of row the store holds (``sim1d``, ``realdata``)."""
        with self._guard():
            return {row[0] for row in self._connection.execute(
                "SELECT DISTINCT kind FROM results")}

    def write(self, records: Iterable[Record]) -> int:
        """Insert ``records`` in one transaction; keys already present are left untouched."""
        rows = [(r.key, r.kind, _json(r.config), int(r.seed), _json(r.metrics), _pack(r.arrays),
                 package_version(), git_revision(), time.time()) for r in records]
        with self._guard(), self._connection:
            cursor = self._connection.executemany(
                "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self._rows_written += max(cursor.rowcount, 0)
        return cursor.rowcount

    def records(self, kind: str | None = None, with_arrays: bool = False) -> list[dict]:
        """Rows (of one ``kind``) as dicts with parsed config and metrics, in insertion order.

        Every row is checked against the row contract (:mod:`analysis.rows`) here, the one
        place every reader goes through: a damaged row (malformed JSON, a missing or
        mistyped entry, a NaN, infinite or non-positive error metric of a run not flagged
        diverged, an unknown kind, arrays that do not decode) is one :class:`InputError`
        naming the store and the row's key, never averaged. Rows of ``kind`` beside rows of
        the other study are refused too: one folder holds one study.
        """
        columns = "key, kind, config, seed, metrics, version, git_revision, created"
        if with_arrays:
            columns += ", arrays"
        query = f"SELECT {columns} FROM results"
        params: tuple = ()
        if kind is not None:
            query += " WHERE kind = ?"
            params = (kind,)
        with self._guard():
            rows = self._connection.execute(query + " ORDER BY rowid", params).fetchall()
            unknown = self._connection.execute(
                "SELECT key, kind FROM results WHERE kind NOT IN (?, ?) ORDER BY rowid LIMIT 1",
                KINDS).fetchone()
            other = self._connection.execute(
                "SELECT key, kind FROM results WHERE kind != ? ORDER BY rowid LIMIT 1",
                (kind,)).fetchone() if kind is not None and rows else None
        if unknown is not None:
            self._refuse_row(unknown[0], f"its kind {unknown[1]!r} is none of "
                             f"{', '.join(KINDS)}")
        if other is not None:
            self._refuse_row(other[0], f"it holds {other[1]} results beside {kind} rows "
                             "(one folder holds one study)")
        return [self._record(row, with_arrays) for row in rows]

    def _record(self, row: tuple, with_arrays: bool) -> dict:
        """One stored row as a dict, checked against the row contract."""
        key = row[0]
        try:
            config, metrics = json.loads(row[2]), json.loads(row[4])
        except (ValueError, TypeError, RecursionError) as error:
            self._refuse_row(key, f"its config or metrics are not valid JSON "
                                  f"({type(error).__name__}: {error})")
        arrays = None
        if with_arrays:
            try:
                arrays = _unpack(row[8])
            except Exception as error:  # noqa: BLE001 (any failure to decode stored bytes)
                self._refuse_row(key, f"its arrays do not decode ({type(error).__name__})")
        problem = row_problem(row[1], config, metrics, arrays)
        if problem is None and (not isinstance(key, str) or not isinstance(row[3], int)):
            problem = f"its key or seed ({row[3]!r}) has the wrong type"
        if problem is not None:
            self._refuse_row(key, problem)
        record = {"key": key, "kind": row[1], "config": config, "seed": row[3],
                  "metrics": metrics, "version": row[5], "git_revision": row[6],
                  "created": row[7]}
        if with_arrays:
            record["arrays"] = arrays
        return record

    def _refuse_row(self, key: object, problem: str) -> NoReturn:
        raise InputError(f"results store {self.path}, row {key!r}: {problem}; the row is "
                         "damaged or was edited, so nothing is reported from it")


def require_kind(store: ResultsStore, kind: str, what: str) -> None:
    """Refuse a store that holds rows of another kind than ``kind`` (one folder, one study)."""
    others = sorted(store.kinds() - {kind})
    if others:
        raise ConfigError(f"{store.path.parent} holds {', '.join(others)} results, not "
                          f"{what}; use another folder")
