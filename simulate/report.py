"""The sweep's answer: each method against the baseline, test MSE on paired runs, per cell.

A method's run pairs with the baseline run of the same :class:`simulate.grid.Recipe` (data,
seeds, training recipe) through :func:`analysis.compare.pair_runs`, which also leaves out
pairs with a diverged run. A cell is (setting, sampling, class count), plus method, binning,
hidden widths or optimizer when the store holds more than one. Per cell we report the paired
statistics of :func:`analysis.stats.compare_paired` on the test MSE and Holm-adjust the
Wilcoxon p-values across all cells. Beside them, the seed-level statistics of
:func:`analysis.stats.compare_by_seed` (``seed_ci_*``, ``p_seed``): the data/model seed is
the unit there, because every function and class count of a seed reuses its data draw and
initialization, so the per-pair CI understates how much a 5-seed cell can move. The report
returns data (and :func:`report_text` the text the CLI prints); :mod:`paper_figures` draws
it.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from clsreg.analysis.compare import Pairing, pair_runs
from clsreg.analysis.errors import InputError
from clsreg.analysis.files import atomic_path
from clsreg.analysis.stats import compare_by_seed, compare_paired, holm, seeds_needed
from clsreg.analysis.store import ResultsStore
from clsreg.analysis.vocabulary import BASELINE_METHOD, SAMPLINGS, SETTINGS, SIM_KIND
from clsreg.simulate.grid import RECIPE_DEFAULTS, sim_identity

STAT_COLUMNS = ("n_pairs", "rel_change", "ci_low", "ci_high", "win_rate", "p_wilcoxon",
                "p_ttest", "p_holm", "n_seeds", "seed_ci_low", "seed_ci_high", "p_seed",
                "p_seed_holm", "seeds_needed")
SUMMARY_COLUMNS = ("setting", "sampling", "num_classes", "n_pairs", "mse_reg", "mse_regcls",
                   "rel_change", "ci_low", "ci_high", "win_rate", "p_wilcoxon", "p_ttest",
                   "p_holm", "n_seeds", "seed_ci_low", "seed_ci_high", "p_seed", "p_seed_holm",
                   "seeds_needed")
# Recipe and method fields that split cells when, within one setting, the store holds more
# than one value (λ and the learning rate differ by setting in the study's own grid).
OPTIONAL_CELL_FIELDS = ("method", "binning", "hidden", "optimizer", "weight_decay",
                        "decay_scaling", "lam", "lr", "epochs", "protocol")


@dataclass(frozen=True)
class Cell:
    """One row of the table: its identity and the paired test MSEs (baseline, method)."""

    setting: str
    sampling: str
    num_classes: int
    extra: tuple[tuple[str, object], ...]
    method: str
    baseline: np.ndarray
    candidate: np.ndarray
    seeds: np.ndarray  # the data seed of each pair: the unit of the seed-level statistics


def load_records(directory: Path) -> list[dict]:
    with ResultsStore(directory, create=False) as store:
        records = store.records(SIM_KIND)
    if not records:
        raise InputError(f"the results store in {directory} holds no 1D runs")
    return records


def pair_records(records: list[dict], methods: list[str] | None = None,
                 baseline: str = BASELINE_METHOD) -> Pairing:
    """Every method run of ``records`` paired with its baseline run."""
    pairing = pair_runs(records, sim_identity, baseline, methods)
    if not pairing.pairs:
        raise InputError(f"no method run has a paired {baseline} run in this store")
    return pairing


def _test_mse(record: dict) -> float:
    value = record["metrics"].get("test_mse")
    return math.nan if value is None else float(value)


def _value(config: dict, name: str):
    value = config.get(name, RECIPE_DEFAULTS.get(name))
    return tuple(value) if isinstance(value, list) else value


def paired_cells(records: list[dict], methods: list[str] | None = None,
                 baseline: str = BASELINE_METHOD) -> list[Cell]:
    """Group the method runs into cells, each with the test MSE of its paired baseline runs
    (``baseline``: reg unless another method is the reference)."""
    pairing = pair_records(records, methods, baseline)
    candidates = [p.candidate["config"] for p in pairing.pairs]
    varying = [f for f in OPTIONAL_CELL_FIELDS
               if len({(c["setting"], str(_value(c, "model" if f == "method" else f)))
                       for c in candidates}) > len({c["setting"] for c in candidates})]
    groups: dict[tuple, list[tuple[float, float, int]]] = {}
    for pair in pairing.pairs:
        c = pair.candidate["config"]
        extra = tuple((f, pair.identity.method if f == "method" else _value(c, f))
                      for f in varying)
        cell = (c["setting"], c["sampling"], int(c["num_classes"]), extra,
                pair.identity.method)
        groups.setdefault(cell, []).append((_test_mse(pair.baseline),
                                            _test_mse(pair.candidate), c["data_seed"]))

    def order(cell):
        setting, sampling, num_classes, extra, _ = cell
        return (tuple(v for _, v in extra),
                SETTINGS.index(setting) if setting in SETTINGS else len(SETTINGS),
                SAMPLINGS.index(sampling) if sampling in SAMPLINGS else len(SAMPLINGS),
                num_classes)

    cells = []
    for key in sorted(groups, key=order):
        pairs = np.array(groups[key], dtype=np.float64)
        cells.append(Cell(key[0], key[1], key[2], key[3], key[4], pairs[:, 0], pairs[:, 1],
                          pairs[:, 2].astype(np.int64)))
    return cells


def mse_columns(cells: list[Cell]) -> tuple[str, str]:
    """``mse_<baseline>`` and ``mse_<method>`` (``mse_method`` when methods vary by row)."""
    methods = list(dict.fromkeys(c.method for c in cells))
    return f"mse_{BASELINE_METHOD}", f"mse_{methods[0]}" if len(methods) == 1 else "mse_method"


def stat_row(baseline: np.ndarray, candidate: np.ndarray, seeds: np.ndarray,
             num_resamples: int = 10_000, mse_names: tuple[str, str] = ("mse_a", "mse_b")
             ) -> dict:
    """The paired and seed-level statistics of one cell (before Holm), as a table row."""
    result = compare_paired(baseline, candidate, num_resamples=num_resamples)
    by_seed = compare_by_seed(baseline, candidate, seeds, num_resamples)
    return {"n_pairs": result.n_pairs, mse_names[0]: result.mean_a,
            mse_names[1]: result.mean_b, "rel_change": result.rel_change,
            "ci_low": result.ci_low, "ci_high": result.ci_high, "win_rate": result.win_rate,
            "p_wilcoxon": result.p_wilcoxon, "p_ttest": result.p_ttest,
            "n_seeds": by_seed.n_seeds, "seed_ci_low": by_seed.ci_low,
            "seed_ci_high": by_seed.ci_high, "p_seed": by_seed.p_ttest,
            # Seeds a t-test over seeds needs to detect this change (80% power, α = 0.05).
            "seeds_needed": seeds_needed(result.rel_change, by_seed.rel_change_sd)}


def add_holm(rows: list[dict]) -> list[dict]:
    """Holm-adjust the Wilcoxon and the seed-level p-values across ``rows`` (in place)."""
    for row, adjusted, by_seed in zip(rows, holm([r["p_wilcoxon"] for r in rows]),
                                      holm([r["p_seed"] for r in rows]), strict=True):
        row["p_holm"] = float(adjusted)
        row["p_seed_holm"] = float(by_seed)
    return rows


def summarize(cells: list[Cell], num_resamples: int = 10_000) -> list[dict]:
    """One summary row per cell, with Holm-adjusted Wilcoxon p-values across all rows."""
    names = mse_columns(cells)
    rows = []
    for cell in cells:
        row = {name: (value if not isinstance(value, tuple) else "-".join(map(str, value)))
               for name, value in cell.extra}
        row.update({"setting": cell.setting, "sampling": cell.sampling,
                    "num_classes": cell.num_classes})
        row.update(stat_row(cell.baseline, cell.candidate, cell.seeds, num_resamples, names))
        rows.append(row)
    return add_holm(rows)


def columns(rows: list[dict]) -> list[str]:
    """The table's columns: varying cell fields, then the cell, the two MSEs and the stats."""
    extra = [f for f in OPTIONAL_CELL_FIELDS if rows and f in rows[0]]
    mse = [k for k in rows[0] if k.startswith("mse_")] if rows else []
    return extra + ["setting", "sampling", "num_classes", "n_pairs", *mse,
                    *STAT_COLUMNS[1:]]


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


def format_rows(rows: list[dict], header: list[str]) -> str:
    """A GitHub-style table of ``header``'s columns: changes in %, p-values to 2 digits."""
    from tabulate import tabulate

    percent = ("rel_change", "ci_low", "ci_high", "seed_ci_low", "seed_ci_high")
    body = []
    for row in rows:
        line = []
        for name in header:
            value = row[name]
            if name in percent:
                line.append(f"{100 * value:+.1f}%")
            elif name == "win_rate":
                line.append(f"{value:.2f}")
            elif name.startswith("p_"):
                line.append(f"{value:.2g}")
            elif name == "seeds_needed":
                line.append(f"{value:.0f}" if math.isfinite(value) else "-")
            elif isinstance(value, float):
                line.append(f"{value:.4g}")
            else:
                line.append(value)
        body.append(line)
    return tabulate(body, headers=header, tablefmt="github", disable_numparse=True)


def format_table(rows: list[dict]) -> str:
    return format_rows(rows, columns(rows))


def report(directory: Path, num_resamples: int = 10_000) -> tuple[list[dict], Path]:
    """Read the store in ``directory``, write ``summary.csv`` next to it, return the rows."""
    rows = summarize(paired_cells(load_records(directory)), num_resamples)
    return rows, write_summary(rows, Path(directory) / "summary.csv")


def report_text(directory: Path, num_resamples: int = 10_000) -> str:
    """What ``clsreg simulate report`` prints: :func:`report`'s table and the CSV it wrote."""
    rows, path = report(directory, num_resamples)
    return f"{format_table(rows)}\n-> {path}"
