"""Where a figure or table finds its stored results, and what it says when they are missing.

Every module of :mod:`paper_figures` has one entry point, ``draw(results, out) -> paths``,
that reads only stored results. A results folder is either what ``clsreg reproduce`` writes
(``sim/``, ``sim_wd0/``, ``controls/``, ``sim_released/``, ``methods/``, ``theory/``,
``real/*/``) or a
bare store folder (``results.sqlite`` of 1D runs at its top, such as
``results/paper_h200``). A figure whose inputs are absent
raises :class:`MissingResults` with the reason; ``clsreg figures all`` reports it as skipped.
"""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from clsreg.analysis.errors import InputError

STORE = "results.sqlite"


class MissingResults(InputError):
    """The results a figure needs are not in the folder (the message says which)."""


def _holds(folder: Path, kind: str) -> bool:
    """Whether ``folder`` has a store with rows of ``kind`` (read-only peek)."""
    path = folder / STORE
    if not path.is_file():
        return False
    try:
        with sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True) as connection:
            return connection.execute("SELECT 1 FROM results WHERE kind = ? LIMIT 1",
                                      (kind,)).fetchone() is not None
    except sqlite3.Error:
        return True  # let the reader report the corruption in its own words


@dataclass(frozen=True)
class Results:
    """The stored results a figure may use; None (or empty) where a kind is absent."""

    sim: Path | None = None
    control: Path | None = None
    theory: Path | None = None
    real: tuple[Path, ...] = field(default_factory=tuple)
    controls: Path | None = None  # a controls suite's store (clsreg simulate controls)
    released: Path | None = None  # the 1D grid under --protocol released
    methods: Path | None = None  # the methods study's store (--preset methods)

    @classmethod
    def discover(cls, root: str | Path) -> Results:
        root = Path(root)
        sim = root / "sim" if _holds(root / "sim", "sim1d") else (
            root if _holds(root, "sim1d") else None)
        control = root / "sim_wd0" if _holds(root / "sim_wd0", "sim1d") else None
        theory = root / "theory" if (root / "theory").is_dir() else None
        real = tuple(sorted(p.parent for p in (root / "real").glob(f"*/{STORE}")
                            if _holds(p.parent, "realdata")))
        if not real and _holds(root, "realdata"):
            real = (root,)
        controls = root / "controls" if _holds(root / "controls", "sim1d") else None
        released = root / "sim_released" if _holds(root / "sim_released", "sim1d") else None
        methods = root / "methods" if _holds(root / "methods", "sim1d") else None
        return cls(sim=sim, control=control, theory=theory, real=real, controls=controls,
                   released=released, methods=methods)

    def need_sim(self) -> Path:
        if self.sim is None:
            raise MissingResults("no 1D simulation store (run clsreg simulate run)")
        return self.sim

    def need_theory_file(self, name: str) -> Path:
        path = self.theory / name if self.theory is not None else None
        if path is None or not path.is_file():
            raise MissingResults(f"no theory/{name} (run clsreg theory predict)")
        return path


def run_alone(draw: Callable[[Results, Path], list[Path]]) -> None:
    """``python -m paper_figures.NAME RESULTS --out FIGS``: one figure from a results folder."""
    parser = argparse.ArgumentParser(description=(draw.__module__ or "figure"))
    parser.add_argument("results", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from clsreg.analysis.files import ensure_dir

    try:
        paths = draw(Results.discover(args.results), ensure_dir(args.out))
    except MissingResults as missing:
        raise SystemExit(f"skipped: {missing}") from None
    for path in paths:
        print(path)
