"""The results store: one SQLite file, one row per trained model, written atomically.

Each row is keyed by a string that names the run completely (config and seed), so a
restarted sweep skips exactly the keys already present. Rows of one finished batch are
inserted in a single transaction: a run killed at any moment leaves either all of a
batch or none of it, never a half-written file. Every row records its config, seed,
metrics, package version and git revision; per-sample arrays (predictions) ride along as
compressed ``.npz`` bytes.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np

from analysis.errors import InputError

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


@cache
def git_revision() -> str:
    """The git commit of the source tree, with ``-dirty`` if it has uncommitted changes.

    A copy of the tree without ``.git`` (a remote GPU box, an unpacked sdist) reports
    ``CLSREG_GIT_REVISION`` from the environment, or "unknown".
    """
    root = Path(__file__).resolve().parent.parent
    fallback = os.environ.get("CLSREG_GIT_REVISION", "unknown")
    if not (root / ".git").exists():
        return fallback
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
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


class ResultsStore:
    """``DIR/results.sqlite``: append-only rows of trained models, resumable by key."""

    FILENAME = "results.sqlite"

    def __init__(self, directory: str | Path, create: bool = True):
        self.path = Path(directory) / self.FILENAME
        if not create and not self.path.exists():
            raise InputError(f"no results store at {self.path}")
        if create:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise InputError(f"cannot create output folder {self.path.parent}: "
                                 f"{error.strerror}") from None
        try:
            self._connection = sqlite3.connect(self.path, timeout=60)
            self._connection.execute(SCHEMA)
            self._connection.commit()
        except sqlite3.DatabaseError as error:
            raise InputError(f"cannot open results store {self.path}: {error}") from None

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def done_keys(self) -> set[str]:
        return {row[0] for row in self._connection.execute("SELECT key FROM results")}

    def write(self, records: Iterable[Record]) -> int:
        """Insert ``records`` in one transaction; keys already present are left untouched."""
        rows = [(r.key, r.kind, _json(r.config), int(r.seed), _json(r.metrics), _pack(r.arrays),
                 package_version(), git_revision(), time.time()) for r in records]
        with self._connection:
            cursor = self._connection.executemany(
                "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return cursor.rowcount

    def records(self, kind: str | None = None, with_arrays: bool = False) -> list[dict]:
        """Rows (of one ``kind``) as dicts with parsed config and metrics, in insertion order."""
        columns = "key, kind, config, seed, metrics, version, git_revision, created"
        if with_arrays:
            columns += ", arrays"
        query = f"SELECT {columns} FROM results"
        params: tuple = ()
        if kind is not None:
            query += " WHERE kind = ?"
            params = (kind,)
        out = []
        for row in self._connection.execute(query + " ORDER BY rowid", params):
            record = {"key": row[0], "kind": row[1], "config": json.loads(row[2]), "seed": row[3],
                      "metrics": json.loads(row[4]), "version": row[5], "git_revision": row[6],
                      "created": row[7]}
            if with_arrays:
                record["arrays"] = _unpack(row[8])
            out.append(record)
        return out
