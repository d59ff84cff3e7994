"""The sweep's answer: reg vs reg+cls test MSE on paired runs, cell by cell.

A reg+cls run pairs with the plain reg run that shares its data and model seed and its
training recipe (setting, sampling, function, function_seed, data_seed, model_seed, hidden,
optimizer, lr, epochs, num_points — the shared 1D contract). A cell is (setting, sampling,
class count), plus binning, hidden widths or optimizer when the store holds more than one.
Per cell we report the paired statistics of :func:`analysis.stats.compare_paired` on the test
MSE and Holm-adjust the Wilcoxon p-values across all cells. A pair with a diverged model is
left out (its MSE is not a measurement of the method).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.errors import InputError
from analysis.files import atomic_path
from analysis.stats import compare_paired, holm
from simulate.data import SAMPLINGS, SETTINGS
from simulate.store import ResultsStore
from simulate.sweep import KIND

PAIR_FIELDS = ("setting", "sampling", "function", "function_seed", "data_seed", "model_seed",
               "hidden", "optimizer", "lr", "epochs", "num_points")
SUMMARY_COLUMNS = ("setting", "sampling", "num_classes", "n_pairs", "mse_reg", "mse_regcls",
                   "rel_change", "ci_low", "ci_high", "win_rate", "p_wilcoxon", "p_ttest",
                   "p_holm")
OPTIONAL_CELL_FIELDS = ("binning", "hidden", "optimizer")


def _pair_key(config: dict) -> tuple:
    return tuple(tuple(config[f]) if isinstance(config[f], list) else config[f]
                 for f in PAIR_FIELDS)


def _test_mse(record: dict) -> float:
    metrics = record["metrics"]
    value = metrics.get("test_mse")
    if metrics.get("diverged") or value is None or not math.isfinite(value):
        return math.nan
    return float(value)


@dataclass(frozen=True)
class Cell:
    """One row of the table: its identity and the paired test MSEs (reg, reg+cls)."""

    setting: str
    sampling: str
    num_classes: int
    extra: tuple[tuple[str, object], ...]
    reg: np.ndarray
    regcls: np.ndarray


def load_records(directory: Path) -> list[dict]:
    with ResultsStore(directory, create=False) as store:
        records = store.records(KIND)
    if not records:
        raise InputError(f"the results store in {directory} holds no 1D runs")
    return records


def paired_cells(records: list[dict]) -> list[Cell]:
    """Group reg+cls runs into cells, each with the MSE of its paired reg runs."""
    reg = {_pair_key(r["config"]): _test_mse(r) for r in records
           if r["config"]["model"] == "reg"}
    varying = [f for f in OPTIONAL_CELL_FIELDS
               if len({str(r["config"][f]) for r in records
                       if r["config"]["model"] == "regcls"}) > 1]
    groups: dict[tuple, list[tuple[float, float]]] = {}
    for r in records:
        c = r["config"]
        if c["model"] != "regcls":
            continue
        partner = reg.get(_pair_key(c))
        if partner is None:
            continue
        extra = tuple((f, tuple(c[f]) if isinstance(c[f], list) else c[f]) for f in varying)
        cell = (c["setting"], c["sampling"], int(c["num_classes"]), extra)
        groups.setdefault(cell, []).append((partner, _test_mse(r)))
    if not groups:
        raise InputError("no reg+cls run has a paired reg run in this store")

    def order(cell):
        setting, sampling, num_classes, extra = cell
        return (tuple(v for _, v in extra),
                SETTINGS.index(setting) if setting in SETTINGS else len(SETTINGS),
                SAMPLINGS.index(sampling) if sampling in SAMPLINGS else len(SAMPLINGS),
                num_classes)

    cells = []
    for key in sorted(groups, key=order):
        pairs = np.array(groups[key], dtype=np.float64)
        cells.append(Cell(key[0], key[1], key[2], key[3], pairs[:, 0], pairs[:, 1]))
    return cells


def summarize(cells: list[Cell], num_resamples: int = 10_000) -> list[dict]:
    """One summary row per cell, with Holm-adjusted Wilcoxon p-values across all rows."""
    rows = []
    for cell in cells:
        result = compare_paired(cell.reg, cell.regcls, num_resamples=num_resamples)
        row = {name: (value if not isinstance(value, tuple) else "-".join(map(str, value)))
               for name, value in cell.extra}
        row.update({"setting": cell.setting, "sampling": cell.sampling,
                    "num_classes": cell.num_classes, "n_pairs": result.n_pairs,
                    "mse_reg": result.mean_a, "mse_regcls": result.mean_b,
                    "rel_change": result.rel_change, "ci_low": result.ci_low,
                    "ci_high": result.ci_high, "win_rate": result.win_rate,
                    "p_wilcoxon": result.p_wilcoxon, "p_ttest": result.p_ttest})
        rows.append(row)
    for row, adjusted in zip(rows, holm([r["p_wilcoxon"] for r in rows]), strict=True):
        row["p_holm"] = float(adjusted)
    return rows


def columns(rows: list[dict]) -> list[str]:
    extra = [f for f in OPTIONAL_CELL_FIELDS if rows and f in rows[0]]
    return extra + list(SUMMARY_COLUMNS)


def write_summary(rows: list[dict], path: Path) -> Path:
    """``summary.csv`` (atomically): the required columns, led by any varying cell field."""
    header = columns(rows)
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                             for k, v in row.items() if k in header})
    return Path(path)


def format_table(rows: list[dict]) -> str:
    from tabulate import tabulate

    header = columns(rows)
    body = []
    for row in rows:
        line = []
        for name in header:
            value = row[name]
            if name in ("rel_change", "ci_low", "ci_high", "win_rate"):
                line.append(f"{100 * value:+.1f}%" if name != "win_rate" else f"{value:.2f}")
            elif name.startswith("p_"):
                line.append(f"{value:.2g}")
            elif isinstance(value, float):
                line.append(f"{value:.4g}")
            else:
                line.append(value)
        body.append(line)
    return tabulate(body, headers=header, tablefmt="github", disable_numparse=True)


def report(directory: Path, num_resamples: int = 10_000) -> tuple[list[dict], Path]:
    """Read the store in ``directory``, write ``summary.csv`` next to it, return the rows."""
    rows = summarize(paired_cells(load_records(directory)), num_resamples)
    return rows, write_summary(rows, Path(directory) / "summary.csv")
