"""The theory checked against a simulate results store: does it rank what it predicts?

Two measured quantities, each per run and then per *cell* (one dataset recipe and class
setup, the seeds averaged):

* ``excess`` — what the theory claims to predict directly: the balanced test MSE that
  imbalance adds to the plain regressor, ``MSE(reg, imbalanced) − MSE(reg, uniform)`` for
  the same setting, function, seeds and training recipe (relative: divided by the uniform
  run's MSE);
* ``gain`` — what the study attributes to it: ``MSE(reg) − MSE(method)`` through the one
  comparison (:func:`analysis.compare.pair_runs`; relative: divided by ``MSE(reg)``), per
  training *regime* (optimizer, learning rate, weight decay, epochs, λ: the controls store
  holds several, e.g. weight decay 0, where the regularization is equal).

Predictions come from :mod:`simulate.theory_link`; σ is, by default, the store's own plain
regressor on uniform data of the same setting, function and regime (``σ-from``), else a
fraction of the range. :func:`check` rank-correlates prediction and measurement (Spearman
and Kendall with bootstrap CIs) per setting and over the label-shift settings pooled, and
sets each ρ against the *noise ceiling*: how well the measured cells rank themselves across
halves of their seeds (:func:`analysis.stats.split_half_reliability`). OOD is reported but
flagged: its split breaks the label-shift assumption.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from clsreg.analysis.compare import pair_runs
from clsreg.analysis.errors import InputError
from clsreg.analysis.stats import rank_correlation_ci, split_half_reliability
from clsreg.analysis.store import ResultsStore
from clsreg.analysis.vocabulary import (
    BASELINE_METHOD,
    DEFAULT_SIGMA_FRACTION,
    LABEL_SHIFT_SETTINGS,
    SETTINGS,
    SIM_KIND,
)
from clsreg.simulate.grid import RECIPE_DEFAULTS, sim_identity
from clsreg.simulate.theory_link import DATASET_KEYS

TARGETS = ("excess", "gain")
POOLED = "clean+noisy"
# The training recipe beyond data and seeds: runs of one regime are compared with each other.
REGIME_KEYS = ("hidden", "optimizer", "lr", "weight_decay", "decay_scaling", "epochs",
               "batch_size", "lam")
CELL_KEYS = DATASET_KEYS[:4] + ("num_classes", "binning", "num_points", "regime")
# Predictors tried against each measurement (absolute measured → absolute predictors).
PREDICTORS = {
    "absolute": ("excess_mse", "predicted_benefit"),
    "relative": ("relative_excess", "relative_benefit"),
}
DEFAULT_PREDICTOR = {"excess": "excess_mse", "gain": "predicted_benefit"}
CALIBRATION_BINS = 10


def theory_records(store_dir: Path) -> list[dict]:
    """The 1D rows of a store, read once; only a clsreg-protocol store can be checked."""
    with ResultsStore(store_dir, create=False) as store:
        records = store.records(SIM_KIND)
    if not records:
        raise InputError(f"results store {store_dir} holds no {SIM_KIND!r} rows")
    protocols = {r["config"].get("protocol", "clsreg") for r in records}
    if protocols != {"clsreg"}:
        raise InputError(f"results store {store_dir} was trained under --protocol "
                         f"{'/'.join(sorted(protocols - {'clsreg'}))}; the theory models the "
                         f"clsreg protocol's sampling, so check a clsreg store")
    return records


def _config(record: dict) -> dict:
    return {**RECIPE_DEFAULTS, **record["config"]}


def regime_of(config: dict, lam: float | None = None) -> tuple:
    """The training regime of a stored run (``lam``: the method's λ, 0 for plain reg)."""
    config = {**RECIPE_DEFAULTS, **config}
    values = [tuple(config["hidden"]) if k == "hidden" else config[k]
              for k in REGIME_KEYS[:-1]]
    return tuple(values) + (float(config.get("lam", 0.0) if lam is None else lam),)


def describe_regime(regime: tuple, varying: set[str] | None = None) -> str:
    """``regime`` in words (only the entries in ``varying``, when given)."""
    parts = []
    for key, value in zip(REGIME_KEYS, regime, strict=True):
        if varying is None or key in varying:
            parts.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
    return ", ".join(parts) or "the store's recipe"


def measured_pairs(records: list[dict], method: str = "regcls") -> list[dict]:
    """Paired (baseline, ``method``) test MSEs of :func:`theory_records`: one row per pair,
    its dataset, seed, class setup and regime (the method's λ included; reg's own regime
    for the σ)."""
    pairing = pair_runs(records, sim_identity, BASELINE_METHOD, [method])
    rows = []
    for pair in pairing.pairs:
        config, base = _config(pair.candidate), _config(pair.baseline)
        reg, cand = (float(p["metrics"]["test_mse"]) for p in (pair.baseline, pair.candidate))
        rows.append({**{k: config[k] for k in DATASET_KEYS},
                     "model_seed": config["model_seed"], "num_points": config["num_points"],
                     "num_classes": int(config["num_classes"]), "binning": config["binning"],
                     "regime": regime_of(config), "sigma_regime": regime_of(base, 0.0),
                     "reg_mse": reg, "regcls_mse": cand, "measured": reg - cand,
                     "measured_rel": (reg - cand) / reg})
    return rows


def _nothing_measured(store_dir: Path, target: str, method: str) -> InputError:
    if target == "gain":
        return InputError(f"results store {store_dir} has no complete {BASELINE_METHOD} / "
                          f"{method} pairs")
    return InputError(f"results store {store_dir} has no {BASELINE_METHOD} runs on both "
                      "uniform and imbalanced data of one function and seed: the excess "
                      "MSE cannot be measured (try --target gain)")


def store_pairs(store_dir: Path, method: str = "regcls") -> list[dict]:
    """:func:`measured_pairs` of a store; an error naming it when there is no pair."""
    rows = measured_pairs(theory_records(store_dir), method)
    if not rows:
        raise _nothing_measured(store_dir, "gain", method)
    return rows


def measured_excess(records: list[dict]) -> list[dict]:
    """The plain regressor's excess balanced MSE under imbalance, one row per imbalanced run:
    its MSE minus that of the uniform-data run of the same setting, function, seeds and
    regime (rows without such a run are left out)."""
    records = [r for r in records if r["config"].get("model") == BASELINE_METHOD
               and not r["metrics"].get("diverged")]

    def twin(config: dict) -> tuple:
        return tuple(sorted((k, str(v)) for k, v in config.items() if k != "sampling"))

    uniform = {twin(_config(r)): float(r["metrics"]["test_mse"]) for r in records
               if r["config"]["sampling"] == "uniform"}
    rows = []
    for record in records:
        config = _config(record)
        base = uniform.get(twin(config))
        if config["sampling"] == "uniform" or base is None:
            continue
        mse = float(record["metrics"]["test_mse"])
        regime = regime_of(config, 0.0)
        rows.append({**{k: config[k] for k in DATASET_KEYS},
                     "model_seed": config["model_seed"], "num_points": config["num_points"],
                     "num_classes": 0, "binning": "uniform", "regime": regime,
                     "sigma_regime": regime, "reg_mse": mse, "uniform_mse": base,
                     "measured": mse - base, "measured_rel": mse / base - 1.0})
    return rows


def uniform_rmse(records: list[dict]) -> dict[tuple, float]:
    """Plain-regression test RMSE on uniform data per (regime, setting, function): σ-from."""
    values: dict[tuple, list[float]] = defaultdict(list)
    for record in records:
        config = _config(record)
        if (config.get("model") == BASELINE_METHOD and config["sampling"] == "uniform"
                and not record["metrics"].get("diverged")):
            key = (regime_of(config, 0.0), config["setting"], int(config["function"]))
            values[key].append(record["metrics"]["test_mse"])
    return {key: math.sqrt(float(np.mean(v))) for key, v in values.items()}


def measured_uniform_rmse(store_dir: Path) -> dict[tuple[str, int], float]:
    """σ-from for ``theory predict``: uniform reg RMSE per (setting, function), regimes pooled."""
    values: dict[tuple[str, int], list[float]] = defaultdict(list)
    for (_, setting, function), rmse in uniform_rmse(theory_records(store_dir)).items():
        values[(setting, function)].append(rmse ** 2)
    return {key: math.sqrt(float(np.mean(v))) for key, v in values.items()}


def attach_predictions(rows: list[dict], sigma: dict[tuple, float] | None,
                       sigma_fraction: float = DEFAULT_SIGMA_FRACTION,
                       workers: int = 1) -> list[dict]:
    """``rows`` with the theory's predictions for their datasets and class setups.

    ``sigma`` maps (regime, setting, function) to a measured σ (None: the fraction of the
    range for every dataset, and likewise for datasets it lacks). Excess rows (no class
    head) get the 4-class decomposition only as a placeholder for the benefit columns.
    """
    from clsreg.simulate.theory_link import predictions_for_pairs

    sigma = sigma or {}
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row["sigma_regime"]].append(row)
    joined = []
    for regime, members in groups.items():
        measured = {(s, f): v for (r, s, f), v in sigma.items() if r == regime}
        setups = [{**m, "num_classes": m["num_classes"] or 4} for m in members]
        table = predictions_for_pairs(setups, sigma_fraction, measured, workers=workers)
        lookup = {(r["setting"], r["sampling"], int(r["function"]), int(r["data_seed"]),
                   int(r["num_points"]), int(r["num_classes"]), r["binning"]): r
                  for r in table.to_dict("records")}
        for member, setup in zip(members, setups, strict=True):
            p = lookup[(member["setting"], member["sampling"], int(member["function"]),
                        int(member["data_seed"]), int(member["num_points"]),
                        setup["num_classes"], member["binning"])]
            sigma2, excess = p["sigma"] ** 2, p["excess_mse"]
            benefit = p["predicted_benefit"] if member["num_classes"] else math.nan
            from_store = (member["setting"], int(member["function"])) in measured
            joined.append({**member, "sigma": p["sigma"],
                           "sigma_source": "store" if from_store else "fraction",
                           "excess_mse": excess, "relative_excess": excess / sigma2,
                           "predicted_benefit": benefit,
                           "relative_benefit": benefit / (sigma2 + excess)})
    return joined


def cells_of(rows: list[dict]) -> list[dict]:
    """Per cell: the measured values per seed (by data seed) and the mean prediction."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in CELL_KEYS)].append(row)
    cells = []
    for key, members in groups.items():
        cell = dict(zip(CELL_KEYS, key, strict=True))
        cell["seeds"] = {int(m["data_seed"]): (m["measured"], m["measured_rel"])
                         for m in members}
        for name in ("measured", "measured_rel", "sigma", *PREDICTORS["absolute"],
                     *PREDICTORS["relative"]):
            cell[name] = float(np.mean([m[name] for m in members]))
        cell["num_seeds"] = len(members)
        cells.append(cell)
    return cells


@dataclass(frozen=True)
class CheckRow:
    """One rank correlation of a prediction with a measurement over a group of cells."""

    target: str
    regime: str
    group: str
    form: str
    predictor: str
    num_cells: int
    num_runs: int
    spearman: float
    spearman_low: float
    spearman_high: float
    p_value: float
    kendall: float
    kendall_low: float
    kendall_high: float
    split_half: float
    reliability: float
    ceiling: float
    share_of_ceiling: float
    theory_applies: bool

    def as_dict(self) -> dict:
        return asdict(self)


def _groups(cells: list[dict]) -> dict[str, list[dict]]:
    groups = {s: [c for c in cells if c["setting"] == s] for s in SETTINGS}
    groups[POOLED] = [c for c in cells if c["setting"] in LABEL_SHIFT_SETTINGS]
    return {name: members for name, members in groups.items() if members}


def _seed_matrix(cells: list[dict], relative: bool) -> np.ndarray:
    seeds = sorted({s for c in cells for s in c["seeds"]})
    matrix = np.full((len(cells), len(seeds)), np.nan)
    for i, cell in enumerate(cells):
        for j, seed in enumerate(seeds):
            if seed in cell["seeds"]:
                matrix[i, j] = cell["seeds"][seed][1 if relative else 0]
    return matrix


def _within(values: np.ndarray, labels: list) -> np.ndarray:
    """Ranks within each label, scaled to (0, 1]: a pooled correlation of these ranks
    measures the ordering inside each group only."""
    from scipy.stats import rankdata

    out = np.empty(values.size)
    for label in set(labels):
        index = np.array([i for i, lab in enumerate(labels) if lab == label])
        out[index] = rankdata(values[index]) / index.size
    return out


def correlate(cells: list[dict], target: str, regime: str, group: str, form: str,
              predictor: str, within: str | None = None, num_resamples: int = 1000,
              seed: int = 0) -> CheckRow:
    """The rank correlation of ``predictor`` with the measured ``form`` over ``cells``
    (``within``: ranks taken inside each setting or function first)."""
    relative = form == "relative"
    predicted = np.array([c[predictor] for c in cells])
    measured = np.array([c["measured_rel" if relative else "measured"] for c in cells])
    keep = np.isfinite(predicted) & np.isfinite(measured)
    kept = [c for c, k in zip(cells, keep, strict=True) if k]
    predicted, measured = predicted[keep], measured[keep]
    if within is not None and kept:
        labels = [c[within] for c in kept]
        predicted, measured = _within(predicted, labels), _within(measured, labels)
    rho, p_value, low, high = rank_correlation_ci(predicted, measured, "spearman",
                                                  num_resamples, seed)
    tau, _, tau_low, tau_high = rank_correlation_ci(predicted, measured, "kendall",
                                                    max(200, num_resamples // 5), seed)
    reliability = split_half_reliability(_seed_matrix(kept, relative))
    share = (rho / reliability.ceiling if reliability.ceiling and math.isfinite(rho)
             else math.nan)
    name = predictor if within is None else f"{predictor} (ranked within {within})"
    return CheckRow(target=target, regime=regime, group=group, form=form, predictor=name,
                    num_cells=len(kept), num_runs=int(sum(c["num_seeds"] for c in kept)),
                    spearman=rho, spearman_low=low, spearman_high=high, p_value=p_value,
                    kendall=tau, kendall_low=tau_low, kendall_high=tau_high,
                    split_half=reliability.split_half, reliability=reliability.reliability,
                    ceiling=reliability.ceiling, share_of_ceiling=share,
                    theory_applies=group != "ood")


def _regimes(cells: list[dict]) -> dict[str, list[dict]]:
    """Cells by regime, named by the regime entries that vary *within* a setting: the
    protocol's per-setting λ and learning rate are one regime across settings."""
    by_setting: dict[str, set] = defaultdict(set)
    for cell in cells:
        by_setting[cell["setting"]].add(cell["regime"])
    varying = {k for i, k in enumerate(REGIME_KEYS)
               if any(len({r[i] for r in regimes}) > 1 for regimes in by_setting.values())}
    groups: dict[str, list[dict]] = defaultdict(list)
    for cell in cells:
        groups[describe_regime(cell["regime"], varying)].append(cell)
    return dict(sorted(groups.items()))


def check(cells: list[dict], target: str, num_resamples: int = 1000,
          seed: int = 0) -> list[CheckRow]:
    """The default predictor against the absolute measurement, per regime and group."""
    rows = []
    for regime, members in _regimes(cells).items():
        for group, group_cells in _groups(members).items():
            rows.append(correlate(group_cells, target, regime, group, "absolute",
                                  DEFAULT_PREDICTOR[target], num_resamples=num_resamples,
                                  seed=seed))
    return rows


def candidates(cells: list[dict], other_sigma_cells: list[dict] | None, target: str,
               num_resamples: int = 500, seed: int = 0) -> list[CheckRow]:
    """What else was tried, on the pooled label-shift cells of each regime: ranks within
    setting (per-setting ranking) and within function (what is left once σ's differences
    between functions are removed), the class-level benefit vs the whole excess, relative
    instead of absolute values, and the other σ."""
    default = DEFAULT_PREDICTOR[target]
    tries = [("absolute", default, "setting"), ("absolute", default, "function"),
             ("relative", "relative_excess", None)]
    if target == "gain":
        tries[2:2] = [("absolute", "excess_mse", None)]
        tries.append(("relative", "relative_benefit", None))
    rows = []
    variants = [(cells, "", tries)]
    if other_sigma_cells:
        variants.append((other_sigma_cells, " [other σ]",
                         [("absolute", default, None), ("relative", tries[-1][1], None)]))
    for variant_cells, suffix, variant_tries in variants:
        for regime, members in _regimes(variant_cells).items():
            pooled = _groups(members).get(POOLED, [])
            settings = {c["setting"] for c in pooled}
            for form, predictor, within in variant_tries:
                if pooled and not (within == "setting" and len(settings) < 2):
                    rows.append(correlate(pooled, target, regime + suffix, POOLED, form,
                                          predictor, within, num_resamples, seed))
    return rows


def calibration_table(cells: list[dict], target: str, bins: int = CALIBRATION_BINS,
                      seed: int = 0) -> list[dict]:
    """Predicted decile → measured mean with a bootstrap 95% CI (pooled label-shift cells,
    the default predictor, absolute values)."""
    pooled = [c for c in cells if c["setting"] in LABEL_SHIFT_SETTINGS
              and math.isfinite(c[DEFAULT_PREDICTOR[target]])]
    if len(pooled) < bins:
        return []
    predicted = np.array([c[DEFAULT_PREDICTOR[target]] for c in pooled])
    measured = np.array([c["measured"] for c in pooled])
    order = np.argsort(predicted, kind="stable")
    rng = np.random.default_rng(seed)
    rows = []
    for index, part in enumerate(np.array_split(order, bins)):
        values = measured[part]
        means = values[rng.integers(0, values.size, (2000, values.size))].mean(axis=1)
        low, high = np.quantile(means, [0.025, 0.975])
        rows.append({"decile": index + 1, "num_cells": int(part.size),
                     "predicted_low": float(predicted[part].min()),
                     "predicted_high": float(predicted[part].max()),
                     "predicted_mean": float(predicted[part].mean()),
                     "measured_mean": float(values.mean()), "ci_low": float(low),
                     "ci_high": float(high)})
    return rows


def variance_shares(rows: list[dict], relative: bool = True) -> dict[str, float]:
    """Share of the measured per-run variance (label-shift settings) explained by the
    function, the setting, the sampling (the imbalance) and the rest (type-II sums of
    squares of a linear model; relative measurements as log(1 + x), clipped at −0.99)."""
    import pandas as pd
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    frame = pd.DataFrame([r for r in rows if r["setting"] in LABEL_SHIFT_SETTINGS])
    if frame.empty or frame["sampling"].nunique() < 2 or frame["function"].nunique() < 2:
        return {}
    value = frame["measured_rel"] if relative else frame["measured"]
    frame["y"] = np.log1p(np.clip(value, -0.99, None)) if relative else value
    terms = ["C(function)", "C(sampling)"]
    if frame["setting"].nunique() > 1:
        terms.append("C(setting)")
    if frame["num_classes"].nunique() > 1:
        terms.append("C(num_classes)")
    table = anova_lm(smf.ols("y ~ " + " + ".join(terms), data=frame).fit(), typ=2)
    total = float(table["sum_sq"].sum())
    names = {"C(function)": "function", "C(sampling)": "sampling (imbalance)",
             "C(setting)": "setting", "C(num_classes)": "classes", "Residual": "residual"}
    return {names[k]: float(v) / total for k, v in table["sum_sq"].items()}


@dataclass(frozen=True)
class TheoryCheck:
    """Everything ``clsreg theory check`` prints for one measured target."""

    target: str
    method: str
    sigma_source: str
    rows: list[CheckRow]
    candidates: list[CheckRow]
    calibration: list[dict]
    shares: dict[str, float]
    cells: list[dict]


def run_check(store_dir: Path, target: str = "excess", method: str = "regcls",
              sigma_fraction: float | None = None, num_resamples: int = 1000,
              workers: int = 1) -> TheoryCheck:
    """The whole check of one target against a store (σ from the store unless a fraction
    is given; the candidates table also tries the other σ)."""
    if target not in TARGETS:
        raise InputError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    records = theory_records(store_dir)
    rows = measured_excess(records) if target == "excess" else measured_pairs(records, method)
    if not rows:
        raise _nothing_measured(store_dir, target, method)
    measured_sigma = uniform_rmse(records)
    fraction = DEFAULT_SIGMA_FRACTION if sigma_fraction is None else sigma_fraction
    main = attach_predictions(rows, None if sigma_fraction is not None else measured_sigma,
                              fraction, workers)
    other = attach_predictions(rows, measured_sigma if sigma_fraction is not None else None,
                               fraction, workers)
    if not {r["sigma_source"] for r in other} - {"fraction"} and sigma_fraction is not None:
        other = []
    cells = cells_of(main)
    sources = sorted({r["sigma_source"] for r in main})
    source = (f"σ = {fraction:g} × range" if sources == ["fraction"] else
              "σ = the store's uniform reg RMSE (same setting, function, regime)"
              + (f"; {fraction:g} × range where it has none" if len(sources) > 1 else ""))
    return TheoryCheck(target=target, method=method, sigma_source=source,
                       rows=check(cells, target, num_resamples),
                       candidates=candidates(cells, cells_of(other) if other else None, target,
                                             max(200, num_resamples // 2)),
                       calibration=calibration_table(cells, target),
                       shares=variance_shares(main), cells=cells)


def ci_text(low: float, high: float) -> str:
    """A correlation's CI, two decimals ("—" when undefined)."""
    return f"[{low:.2f}, {high:.2f}]" if math.isfinite(low) else "—"


def number_text(value: float, digits: int = 2) -> str:
    """A correlation-scale number, fixed decimals ("—" when undefined)."""
    return f"{value:.{digits}f}" if math.isfinite(value) else "—"


def format_check(result: TheoryCheck) -> str:
    """The check as tables, then the plain statement of where the theory does not apply."""
    from tabulate import tabulate

    what = ("the plain regressor's excess balanced MSE under imbalance (reg on imbalanced "
            "minus reg on uniform data, same function and seeds)" if result.target == "excess"
            else f"the gain MSE(reg) − MSE({result.method})")
    lines = [f"Measured: {what}. Predicted: {DEFAULT_PREDICTOR[result.target]}; "
             f"{result.sigma_source}.", ""]
    lines.append(tabulate(
        [(r.regime, r.group, r.num_cells, r.num_runs,
          f"{r.spearman:.2f} {ci_text(r.spearman_low, r.spearman_high)}", f"{r.p_value:.2g}",
          f"{r.kendall:.2f} {ci_text(r.kendall_low, r.kendall_high)}", number_text(r.split_half),
          number_text(r.reliability), number_text(r.ceiling), number_text(r.share_of_ceiling),
          "yes" if r.theory_applies else "NO")
         for r in result.rows],
        headers=["regime", "cells", "n", "runs", "Spearman ρ [95% CI]", "p",
                 "Kendall τ [95% CI]", "split-half", "reliability", "ceiling", "ρ/ceiling",
                 "theory applies"]))
    lines += ["", "Split-half: Spearman of the measured cells between halves of their seeds; "
              "reliability: its Spearman-Brown correction to all seeds (0 if the halves do not "
              "agree); ceiling = √reliability, the ρ a noise-free predictor can expect against "
              "these noisy cells.", ""]
    lines.append(f"What was tried ({POOLED} pooled):")
    lines.append(tabulate(
        [(r.regime, r.form, r.predictor, r.num_cells,
          f"{r.spearman:.2f} {ci_text(r.spearman_low, r.spearman_high)}",
          number_text(r.ceiling), number_text(r.share_of_ceiling)) for r in result.candidates],
        headers=["regime", "measured", "predictor", "cells", "Spearman ρ [95% CI]", "ceiling",
                 "ρ/ceiling"]))
    if result.calibration:
        lines += ["", f"Calibration ({POOLED}, {DEFAULT_PREDICTOR[result.target]}, deciles "
                  "of the prediction; every regime together):"]
        lines.append(tabulate(
            [(r["decile"], r["num_cells"], f"{r['predicted_mean']:.4g}",
              f"{r['measured_mean']:.4g}", ci_text(r["ci_low"], r["ci_high"]))
             for r in result.calibration],
            headers=["decile", "cells", "predicted mean", "measured mean", "95% CI"]))
    if result.shares:
        lines += ["", "Share of the measured per-run variance (relative change, log scale) "
                  "explained by: " + ", ".join(f"{k} {100 * v:.0f}%"
                                               for k, v in result.shares.items())]
    lines += ["", "Theory applies to clean and noisy data (label shift: training and test "
              "differ only in the target marginal). It does NOT apply to ood: training and "
              "test x come from disjoint intervals, so p_train(x|y) != p_bal(x|y); its "
              "correlation is shown for reference only."]
    return "\n".join(lines)


def write_check(result: TheoryCheck, out_dir: Path) -> list[Path]:
    """``check_<target>.csv``, ``candidates_<target>.csv`` and ``calibration_<target>.csv``
    in ``out_dir`` (each written atomically)."""
    import pandas as pd
    from clsreg.analysis.files import atomic_path, ensure_dir

    out_dir = ensure_dir(out_dir)
    tables = {"check": [r.as_dict() for r in result.rows],
              "candidates": [r.as_dict() for r in result.candidates],
              "calibration": result.calibration}
    paths = []
    for name, rows in tables.items():
        path = out_dir / f"{name}_{result.target}.csv"
        with atomic_path(path) as temporary:
            pd.DataFrame(rows).to_csv(temporary, index=False, float_format="%.6g")
        paths.append(path)
    return paths
