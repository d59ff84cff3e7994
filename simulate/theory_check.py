"""The theory checked against a simulate results store: measured gains vs predictions.

Pairs come from the one comparison (:func:`simulate.compare.pair_runs`); each cell's mean
measured ``baseline − method`` test MSE is joined with the prediction for its dataset and
class setup (:mod:`simulate.theory_link`) and the two are rank-correlated per setting. OOD
is reported but flagged: its split breaks the label-shift assumption.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from analysis.errors import InputError
from analysis.stats import spearman_ci
from analysis.vocabulary import BASELINE_METHOD, LABEL_SHIFT_SETTINGS, SETTINGS, SIM_KIND
from simulate.compare import pair_runs
from simulate.grid import sim_identity
from simulate.store import ResultsStore
from simulate.theory_link import DATASET_KEYS


def measured_pairs(store_dir: Path, method: str = "regcls") -> list[dict]:
    """Paired (baseline, ``method``) test MSEs from a results store.

    Pairs come from :func:`simulate.compare.pair_runs` (same recipe; pairs with a diverged
    run left out); each row carries the dataset, model seed, recipe and class setup.
    """
    with ResultsStore(store_dir, create=False) as store:
        records = store.records(SIM_KIND)
    if not records:
        raise InputError(f"results store {store_dir} holds no {SIM_KIND!r} rows")
    protocols = {r["config"].get("protocol", "clsreg") for r in records}
    if protocols != {"clsreg"}:
        raise InputError(f"results store {store_dir} was trained under --protocol "
                         f"{'/'.join(sorted(protocols - {'clsreg'}))}; the theory models the "
                         f"clsreg protocol's sampling, so check a clsreg store")
    pairing = pair_runs(records, sim_identity, BASELINE_METHOD, [method])
    pairs = []
    for pair in pairing.pairs:
        recipe, config = pair.identity.recipe, pair.candidate["config"]
        pairs.append({**{k: getattr(recipe, k) for k in DATASET_KEYS},
                      "model_seed": recipe.model_seed, "hidden": recipe.hidden,
                      "optimizer": recipe.optimizer, "lr": recipe.lr, "epochs": recipe.epochs,
                      "num_points": recipe.num_points,
                      "num_classes": int(config["num_classes"]), "binning": config["binning"],
                      "reg_mse": float(pair.baseline["metrics"]["test_mse"]),
                      "regcls_mse": float(pair.candidate["metrics"]["test_mse"])})
    if not pairs:
        raise InputError(f"results store {store_dir} has no complete {BASELINE_METHOD} / "
                         f"{method} pairs")
    return pairs


def measured_uniform_rmse(store_dir: Path) -> dict[tuple[str, int], float]:
    """Plain-regression test RMSE on uniform data per (setting, function): the effective σ."""
    with ResultsStore(store_dir, create=False) as store:
        records = store.records(SIM_KIND)
    values: dict[tuple[str, int], list[float]] = defaultdict(list)
    for record in records:
        config, metrics = record["config"], record["metrics"]
        if (config.get("model") == BASELINE_METHOD and config.get("sampling") == "uniform"
                and not metrics.get("diverged")):
            values[(config["setting"], int(config["function"]))].append(metrics["test_mse"])
    return {key: math.sqrt(float(np.mean(v))) for key, v in values.items()}


@dataclass(frozen=True)
class CheckRow:
    """Correlation of prediction and measurement over one group of cells."""

    group: str
    num_cells: int
    num_pairs: int
    spearman: float
    p_value: float
    ci_low: float
    ci_high: float
    spearman_benefit: float
    theory_applies: bool

    def as_dict(self) -> dict:
        return asdict(self)


def join_cells(pairs: list[dict], predictions) -> list[dict]:
    """Mean measured ``reg − reg+cls`` test MSE per cell, joined with its prediction.

    A cell is (setting, sampling, function, function_seed, data_seed, num_classes,
    binning, hidden, optimizer, num_points); model seeds are averaged. Predictions match on
    num_points too when they carry that column (the window weight depends on it).
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for pair in pairs:
        key = tuple(pair[k] for k in DATASET_KEYS) + (pair["num_classes"], pair["binning"],
                                                        pair["hidden"], pair["optimizer"],
                                                        pair["num_points"])
        groups[key].append(pair)
    by_size = "num_points" in predictions.columns
    lookup = {}
    for row in predictions.to_dict("records"):
        key = (row["setting"], row["sampling"], int(row["function"]), int(row["function_seed"]),
               int(row["data_seed"]), int(row["num_classes"]), row["binning"])
        lookup[key + ((int(row["num_points"]),) if by_size else ())] = row
    cells = []
    for key, members in groups.items():
        prediction = lookup.get(key[:7] + ((key[9],) if by_size else ()))
        if prediction is None:
            continue
        diff = np.array([m["reg_mse"] - m["regcls_mse"] for m in members])
        cells.append({**dict(zip(DATASET_KEYS, key[:5], strict=True)),
                      "num_classes": key[5], "binning": key[6], "hidden": key[7],
                      "optimizer": key[8], "num_pairs": len(members),
                      "measured_diff": float(diff.mean()),
                      "measured_rel": float(diff.sum() / sum(m["reg_mse"] for m in members)),
                      "excess_mse": float(prediction["excess_mse"]),
                      "predicted_benefit": float(np.nan_to_num(
                          prediction["captured_fraction"]) * prediction["excess_mse"])})
    return cells


def check_cells(cells: list[dict], num_resamples: int = 2000, seed: int = 0) -> list[CheckRow]:
    """Spearman of predicted ``excess_mse`` with measured ``reg − reg+cls`` per setting, and
    over the label-shift settings together (clean + noisy)."""
    groups = {s: [c for c in cells if c["setting"] == s] for s in SETTINGS}
    groups["clean+noisy"] = [c for c in cells if c["setting"] in LABEL_SHIFT_SETTINGS]
    rows = []
    for name, members in groups.items():
        if not members:
            continue
        predicted = np.array([c["excess_mse"] for c in members])
        measured = np.array([c["measured_diff"] for c in members])
        rho, p_value, low, high = spearman_ci(predicted, measured, num_resamples, seed)
        benefit = np.array([c["predicted_benefit"] for c in members])
        rho_benefit = spearman_ci(benefit, measured, 2, seed)[0]
        rows.append(CheckRow(group=name, num_cells=len(members),
                             num_pairs=int(sum(c["num_pairs"] for c in members)),
                             spearman=rho, p_value=p_value, ci_low=low, ci_high=high,
                             spearman_benefit=rho_benefit, theory_applies=name != "ood"))
    return rows


def format_check(rows: list[CheckRow]) -> str:
    """The check as a table plus the plain statement of where the theory does not apply."""
    from tabulate import tabulate

    table = tabulate(
        [(r.group, r.num_cells, r.num_pairs, f"{r.spearman:.3f}",
          f"[{r.ci_low:.3f}, {r.ci_high:.3f}]", f"{r.p_value:.2g}", f"{r.spearman_benefit:.3f}",
          "yes" if r.theory_applies else "NO") for r in rows],
        headers=["cells", "n cells", "n pairs", "Spearman(excess_mse, reg-regcls)", "95% CI",
                 "p", "Spearman(benefit)", "theory applies"])
    note = ("Theory applies to clean and noisy data (label shift: training and test differ only "
            "in the target marginal). It does NOT apply to ood: training and test x come from "
            "disjoint intervals, so p_train(x|y) != p_bal(x|y); its correlation is shown for "
            "reference only.")
    return table + "\n\n" + note
