"""The controls' answer: is the study's reg+cls gain the classification or the weight decay?

Reads a store trained with a controls suite (:data:`simulate.grid.SUITES`) and writes two
tables, both through the one pairing (:func:`analysis.compare.pair_runs`) and the report's
statistics (the seed as the unit, :mod:`analysis.inference`; Holm within one family per
question: each control is a family, and each search baseline is one):

* ``controls.csv`` — per (setting, sampling), reg+cls against reg under the study's coupled
  L2 (1e-3), no decay, AdamW (decoupled, 1e-3) and equal effective decay (reg+cls's decay
  ×λ); λ·MSE alone against reg (the loss scale without the CE) and reg+cls against λ·MSE
  alone (the CE at equal loss scale and decay); and plain reg without decay against reg with
  it (what the decay itself does).
* ``search.csv`` — with the decay equalized at 0, every reg+cls variant (λ, C, binning,
  learning rate, epochs) against reg of its own recipe and against the *best-regularized*
  reg: per dataset and seed, the reg run with the lowest validation MSE among every decay,
  learning rate and epoch count in the store.

A cell counts as a significant gain when its verdict is "helps": its seed-level 95% CI lies
below 0 and its seed-level p survives Holm within its family (the seeds, not the pairs, are
the independent draws). "equivalent within ±m" says the TOST rejects a change beyond the
margin; "undecided" says the seeds cannot tell, with the seeds it would take.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from clsreg.analysis.compare import RunIdentity, pair_runs
from clsreg.analysis.errors import InputError
from clsreg.analysis.files import atomic_path
from clsreg.analysis.inference import verdict_tally
from clsreg.analysis.vocabulary import DEFAULT_MARGIN, SAMPLINGS, SETTINGS
from clsreg.simulate.grid import RECIPE_DEFAULTS, Grid, sim_identity
from clsreg.simulate.report import (
    SHOWN_STAT_COLUMNS,
    STAT_COLUMNS,
    decide,
    format_rows,
    load_records,
    stat_row,
    table_header,
)

STUDY_DECAY = Grid().weight_decay
CONTROL_COLUMNS = ("control", "setting", "sampling", "mse_baseline", "mse_method",
                   *STAT_COLUMNS)
SEARCH_COLUMNS = ("setting", "sampling", "lam", "num_classes", "binning", "lr", "epochs",
                  "versus", "mse_baseline", "mse_method", *STAT_COLUMNS, "significant_gain")


def _config(record: dict, name: str):
    return record["config"].get(name, RECIPE_DEFAULTS.get(name))


class Base:
    """The suite's base recipe per setting, read from the store: the learning rate and
    epochs most runs share (the search varies them for a few), and the study's λ (that of
    λ·MSE alone, which only the study's variant trains)."""

    def __init__(self, records: list[dict]):
        shared = Counter((r["config"]["setting"], r["config"]["lr"], r["config"]["epochs"])
                         for r in records)
        self.recipe: dict[str, tuple[float, int]] = {}
        for (setting, lr, epochs), _ in shared.most_common():
            self.recipe.setdefault(setting, (lr, epochs))
        self.lam = {r["config"]["setting"]: r["config"]["lam"] for r in records
                    if r["config"]["model"] == "lamreg"}

    def at_base(self, record: dict) -> bool:
        """Trained at the setting's base learning rate and epochs."""
        c = record["config"]
        return self.recipe.get(c["setting"]) == (c["lr"], c["epochs"])

    def study_lam(self, record: dict) -> bool:
        """A method without λ, or one at the study's λ and binning (uniform-width)."""
        c = record["config"]
        return c["binning"] == "uniform" and (c["lam"] == 0.0
                                              or c["lam"] == self.lam.get(c["setting"]))

    def recipe_filter(self, optimizer: str, decay: float,
                      scaling: str = "none") -> Callable[[dict], bool]:
        def keep(record: dict) -> bool:
            c = record["config"]
            return (self.at_base(record) and self.study_lam(record)
                    and c["optimizer"] == optimizer and c["weight_decay"] == decay
                    and _config(record, "decay_scaling") == scaling)
        return keep


def _cells(pairs, label: Callable) -> dict[tuple, list]:
    groups: dict[tuple, list] = {}
    for pair in pairs:
        config = pair.candidate["config"]
        groups.setdefault((label(pair), config["setting"], config["sampling"]), []).append(pair)
    return groups


def _arrays(pairs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.array([p.baseline["metrics"]["test_mse"] for p in pairs], dtype=np.float64),
            np.array([p.candidate["metrics"]["test_mse"] for p in pairs], dtype=np.float64),
            np.array([p.candidate["config"]["data_seed"] for p in pairs]))


def _order(key: tuple) -> tuple:
    """Cells in setting, then sampling, order (key: label, setting, sampling)."""
    setting, sampling = key[1], key[2]
    return (SETTINGS.index(setting) if setting in SETTINGS else 9,
            SAMPLINGS.index(sampling) if sampling in SAMPLINGS else 9)


def _decay_identity(record: dict) -> RunIdentity:
    """Plain reg at one decay paired with plain reg at another: the decay is the 'method'."""
    identity = sim_identity(record)
    decay = record["config"]["weight_decay"]
    setup = identity.recipe
    return RunIdentity(replace(setup, train=replace(setup.train, weight_decay=0.0)),
                       f"{identity.method}@{decay:g}", identity.settings)


def control_rows(records: list[dict], num_resamples: int = 10_000,
                 margin: float = DEFAULT_MARGIN) -> list[dict]:
    """The controls table (module docstring); each control is one Holm family."""
    base = Base(records)

    def having(*recipe) -> list[dict]:
        return list(filter(base.recipe_filter(*recipe), records))

    study = having("adam", STUDY_DECAY)
    comparisons = [
        ("study: reg+cls vs reg (coupled L2 1e-3)", study, "reg", "regcls", sim_identity),
        ("no decay: reg+cls vs reg", having("adam", 0.0), "reg", "regcls", sim_identity),
        ("AdamW 1e-3: reg+cls vs reg", having("adamw", STUDY_DECAY), "reg", "regcls",
         sim_identity),
        ("equal effective decay: reg+cls (decay ×λ) vs reg",
         having("adam", STUDY_DECAY, "lambda"), "reg", "regcls", sim_identity),
        ("λ·MSE alone vs reg (coupled L2 1e-3)", study, "reg", "lamreg", sim_identity),
        ("reg+cls vs λ·MSE alone (coupled L2 1e-3)", study, "lamreg", "regcls", sim_identity),
        ("reg without decay vs reg with 1e-3",
         having("adam", 0.0) + having("adam", STUDY_DECAY),
         f"reg@{STUDY_DECAY:g}", "reg@0", _decay_identity),
    ]
    rows = []
    for name, subset, baseline, method, identify in comparisons:
        if identify is _decay_identity:
            subset = [r for r in subset if r["config"]["model"] == "reg"]
        pairing = pair_runs(subset, identify, baseline, [method])
        for key, pairs in sorted(_cells(pairing.pairs, lambda p, n=name: n).items(),
                                 key=lambda item: _order(item[0])):
            row = {"control": name, "setting": key[1], "sampling": key[2]}
            row.update(stat_row(*_arrays(pairs), num_resamples,
                                ("mse_baseline", "mse_method"), margin))
            rows.append(row)
    if not rows:
        raise InputError("this store holds none of the controls; train one with "
                         "clsreg simulate run --preset controls-quick")
    return decide(rows, lambda row: row["control"])


def _best_reg(records: list[dict]) -> list[dict]:
    """Per dataset and seed, the reg run with the lowest validation MSE among every decay,
    optimizer, learning rate and epoch count in the store (the tuning reg+cls's variants
    get), relabelled ``best-reg``."""
    best: dict[tuple, dict] = {}
    for record in records:
        config = record["config"]
        if config["model"] != "reg" or record["metrics"]["diverged"]:
            continue
        key = _dataset(record)
        if key not in best or record["metrics"]["val_mse"] < best[key]["metrics"]["val_mse"]:
            best[key] = record
    return [{**r, "config": {**r["config"], "model": "best-reg"}} for r in best.values()]


def _dataset(record: dict) -> tuple:
    c = record["config"]
    return (c["setting"], c["sampling"], c["function"], c["function_seed"], c["data_seed"],
            c["model_seed"], tuple(c["hidden"]), _config(record, "protocol"))


def _dataset_identity(record: dict) -> RunIdentity:
    c = record["config"]
    return RunIdentity(_dataset(record), c["model"],
                       (c["num_classes"], c["binning"], c["lam"], c["lr"], c["epochs"]))


def search_rows(records: list[dict], num_resamples: int = 10_000,
                margin: float = DEFAULT_MARGIN) -> list[dict]:
    """Every reg+cls variant without decay against reg of its own recipe and against the
    best-regularized reg; each baseline is one Holm family ("is any variant better than
    it?")."""
    searched = [r for r in records if r["config"]["model"] == "regcls"
                and r["config"]["weight_decay"] == 0.0 and r["config"]["optimizer"] == "adam"
                and _config(r, "decay_scaling") == "none"]
    if not searched:
        raise InputError("this store holds no reg+cls runs without weight decay to search")
    own = pair_runs(searched + [r for r in records if r["config"]["model"] == "reg"],
                    sim_identity, "reg", ["regcls"])
    best = pair_runs(searched + _best_reg(records), _dataset_identity, "best-reg", ["regcls"])

    def label(pair) -> tuple:
        c = pair.candidate["config"]
        return (c["lam"], c["num_classes"], c["binning"], c["lr"], c["epochs"])

    rows = []
    for versus, pairing in (("reg, no decay", own), ("best-regularized reg", best)):
        for key, pairs in sorted(_cells(pairing.pairs, label).items(),
                                 key=lambda item: (_order(item[0]), item[0][0])):
            lam, num_classes, binning, lr, epochs = key[0]
            row = {"setting": key[1], "sampling": key[2], "lam": lam,
                   "num_classes": num_classes, "binning": binning, "lr": lr,
                   "epochs": epochs, "versus": versus}
            row.update(stat_row(*_arrays(pairs), num_resamples,
                                ("mse_baseline", "mse_method"), margin))
            rows.append(row)
    decide(rows, lambda row: f"search: reg+cls variants vs {row['versus']}")
    for row in rows:
        row["significant_gain"] = row["verdict"].startswith("helps")
    return rows


def write_rows(rows: list[dict], columns: tuple[str, ...], path: Path) -> Path:
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                             for k, v in row.items()})
    return Path(path)


def verdict(search: list[dict]) -> str:
    """One plain sentence: where, if anywhere, reg+cls beats the best-regularized reg."""
    against_best = [r for r in search if r["versus"] == "best-regularized reg"]
    wins = [r for r in against_best if r["significant_gain"]]
    own = [r for r in search if r["versus"] == "reg, no decay"]
    own_wins = sum(r["significant_gain"] for r in own)
    same_recipe = (f" Against plain reg of the same recipe (no decay, same learning rate and "
                   f"epochs) it is a significant gain in {own_wins} of {len(own)} cells.")
    tally = verdict_tally(against_best)
    if not wins:
        best = min(against_best, key=lambda r: r["rel_change"])
        return (f"With the weight decay equalized, reg+cls beats the best-regularized reg in "
                f"none of {len(against_best)} cells (verdicts: {tally}); its best cell is "
                f"{best['setting']}/{best['sampling']} λ = "
                f"{best['lam']:g}, C = {best['num_classes']}, {best['binning']} bins, lr "
                f"{best['lr']:g}, {best['epochs']} epochs: "
                f"{100 * best['rel_change']:+.1f}% [{100 * best['ci_low']:+.1f}, "
                f"{100 * best['ci_high']:+.1f}] (seed CI), seed Holm p = "
                f"{best['p_seed_holm']:.2g}, {best['verdict']}." + same_recipe)
    cells = "; ".join(f"{r['setting']}/{r['sampling']} λ = {r['lam']:g}, C = "
                      f"{r['num_classes']}, {r['binning']}, lr {r['lr']:g}, {r['epochs']} "
                      f"epochs: {100 * r['rel_change']:+.1f}%" for r in wins)
    return (f"With the weight decay equalized, reg+cls beats the best-regularized reg in "
            f"{len(wins)} of {len(against_best)} cells (verdicts: {tally}): {cells}."
            + same_recipe)


def controls_report(directory: Path, num_resamples: int = 10_000,
                    margin: float = DEFAULT_MARGIN) -> tuple[list[dict], list[dict], str]:
    """Write ``controls.csv`` and ``search.csv`` next to the store; return rows and verdict."""
    records = load_records(directory)
    controls = control_rows(records, num_resamples, margin)
    search = search_rows(records, num_resamples, margin)
    write_rows(controls, CONTROL_COLUMNS, Path(directory) / "controls.csv")
    write_rows(search, SEARCH_COLUMNS, Path(directory) / "search.csv")
    return controls, search, verdict(search)


# The columns ``clsreg simulate controls`` prints of each table (the CSVs hold them all).
SHOWN_CONTROL_COLUMNS = ["control", "setting", "sampling", *SHOWN_STAT_COLUMNS]
SHOWN_SEARCH_COLUMNS = ["setting", "sampling", "lam", "num_classes", "binning", "lr", "epochs",
                        *SHOWN_STAT_COLUMNS]


def controls_text(directory: Path, num_resamples: int = 10_000,
                  margin: float = DEFAULT_MARGIN) -> str:
    """What ``clsreg simulate controls`` prints: the controls table, the search against the
    best-regularized reg, the verdict and the two CSVs :func:`controls_report` wrote."""
    controls, search, said = controls_report(directory, num_resamples, margin)
    against_best = [r for r in search if r["versus"] == "best-regularized reg"]
    return "\n".join([table_header(controls), "", format_rows(controls, SHOWN_CONTROL_COLUMNS),
                      "", table_header(against_best), "",
                      format_rows(against_best, SHOWN_SEARCH_COLUMNS), "", said,
                      f"-> {Path(directory) / 'controls.csv'}, {Path(directory) / 'search.csv'}"])
