"""The sweep's answer: each method against the baseline, test MSE on paired runs, per cell.

A method's run pairs with the baseline run of the same :class:`simulate.grid.Recipe` (data,
seeds, training recipe) through :func:`analysis.compare.pair_runs`, which also leaves out
pairs with a diverged run. A cell is (setting, sampling, class count), plus method, binning,
hidden widths or optimizer when the store holds more than one.

Per cell, the inference rule of :mod:`analysis.inference` with the data/model seed as the
unit (every function and class count of a seed reuses its data draw and initialization, so
its pairs are not independent): the relative change of the mean test MSE, its Fieller 95% CI
over seeds, the paired t-test over seeds (``p_seed``), the TOST equivalence test against
± the margin (``p_equiv``), a verdict, and the seeds an undecided cell needs. Holm adjusts
within one family per question (here: one method against the baseline over the table's
cells). The per-pair statistics (bootstrap CI over pairs, win rate, Wilcoxon ``p_pair``) stay
as secondary columns. The report returns data (and :func:`report_text` the text the CLI
prints); :mod:`paper_figures` draws it.
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
from clsreg.analysis.inference import decide_families, family_sizes, unit_row
from clsreg.analysis.stats import compare_paired
from clsreg.analysis.store import ResultsStore
from clsreg.analysis.vocabulary import (
    BASELINE_METHOD,
    DEFAULT_MARGIN,
    P_PAIR,
    SAMPLINGS,
    SETTINGS,
    SIM_KIND,
)
from clsreg.simulate.grid import RECIPE_DEFAULTS, sim_identity

# Seed-level (the claim), then per-pair (secondary) statistics of a cell.
STAT_COLUMNS = ("n_seeds", "rel_change", "ci_low", "ci_high", "p_seed", "p_seed_holm",
                "p_equiv", "p_equiv_holm", "verdict", "seeds_needed", "change_sd", "n_pairs",
                "pair_ci_low", "pair_ci_high", "win_rate", "p_pair", "p_pair_holm", "family")
SUMMARY_COLUMNS = ("setting", "sampling", "num_classes", "mse_reg", "mse_regcls",
                   *STAT_COLUMNS)
# What a table prints of each cell (the CSVs hold every column).
SHOWN_STAT_COLUMNS = ["rel_change", "ci_low", "ci_high", "p_seed_holm", "p_equiv_holm",
                      "verdict", "pair_ci_low", "pair_ci_high", "p_pair_holm"]
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
             num_resamples: int = 10_000, mse_names: tuple[str, str] = ("mse_a", "mse_b"),
             margin: float = DEFAULT_MARGIN) -> dict:
    """The seed-level and per-pair statistics of one cell, as a table row; finish a table's
    rows with :func:`decide`."""
    pairs = compare_paired(baseline, candidate, num_resamples=num_resamples)
    return {mse_names[0]: pairs.mean_a, mse_names[1]: pairs.mean_b,
            **unit_row(baseline, candidate, seeds, margin),
            "n_pairs": pairs.n_pairs, "pair_ci_low": pairs.ci_low,
            "pair_ci_high": pairs.ci_high, "win_rate": pairs.win_rate,
            P_PAIR: pairs.p_wilcoxon}


def decide(rows: list[dict], family_of) -> list[dict]:
    """Holm within each family (``family_of(row)`` names its question), verdicts (in place)."""
    return decide_families(rows, family_of, secondary=(P_PAIR,))


def method_family(row: dict) -> str:
    """The 1D report's family: one method against the baseline over the table's cells."""
    return f"{row['method_name']} vs {BASELINE_METHOD}"


def summarize(cells: list[Cell], num_resamples: int = 10_000,
              margin: float = DEFAULT_MARGIN) -> list[dict]:
    """One summary row per cell; Holm within each method's family of cells."""
    names = mse_columns(cells)
    rows = []
    for cell in cells:
        row = {name: (value if not isinstance(value, tuple) else "-".join(map(str, value)))
               for name, value in cell.extra}
        row.update({"setting": cell.setting, "sampling": cell.sampling,
                    "num_classes": cell.num_classes, "method_name": cell.method})
        row.update(stat_row(cell.baseline, cell.candidate, cell.seeds, num_resamples, names,
                            margin))
        rows.append(row)
    return decide(rows, method_family)


def columns(rows: list[dict]) -> list[str]:
    """The table's columns: varying cell fields, then the cell, the two MSEs and the stats."""
    extra = [f for f in OPTIONAL_CELL_FIELDS if rows and f in rows[0]]
    mse = [k for k in rows[0] if k.startswith("mse_")] if rows else []
    return extra + ["setting", "sampling", "num_classes", *mse, *STAT_COLUMNS]


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

    percent = ("rel_change", "ci_low", "ci_high", "pair_ci_low", "pair_ci_high")
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


TABLE_NOTE = ("Unit: the seed (per-seed mean over the cell's functions). rel_change: of the "
              "mean test MSE; ci: Fieller 95% over seeds; p_seed: paired t over seeds; "
              "p_equiv: TOST against ±{margin:.0%} of the baseline; verdict from the "
              "Holm-adjusted p; pair_ci, p_pair (Wilcoxon over function × seed pairs): "
              "secondary, pairs of a seed are not independent.")


def table_header(rows: list[dict]) -> str:
    """The lines above a printed table: its unit and tests, and its Holm families."""
    margin = rows[0]["margin"] if rows else DEFAULT_MARGIN
    return f"{TABLE_NOTE.format(margin=margin)}\n{family_sizes(rows)}"


def format_table(rows: list[dict]) -> str:
    extra = [f for f in OPTIONAL_CELL_FIELDS if rows and f in rows[0]]
    return format_rows(rows, extra + ["setting", "sampling", "num_classes",
                                      *SHOWN_STAT_COLUMNS])


def report(directory: Path, num_resamples: int = 10_000,
           margin: float = DEFAULT_MARGIN) -> tuple[list[dict], Path]:
    """Read the store in ``directory``, write ``summary.csv`` next to it, return the rows."""
    rows = summarize(paired_cells(load_records(directory)), num_resamples, margin)
    return rows, write_summary(rows, Path(directory) / "summary.csv")


def report_text(directory: Path, num_resamples: int = 10_000,
                margin: float = DEFAULT_MARGIN) -> str:
    """What ``clsreg simulate report`` prints: :func:`report`'s table and the CSV it wrote."""
    rows, path = report(directory, num_resamples, margin)
    return f"{table_header(rows)}\n\n{format_table(rows)}\n-> {path}"
