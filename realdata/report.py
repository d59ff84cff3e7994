"""Per-shot tables of each method against the baseline from a results folder (PROTOCOL §4).

Runs pair through :func:`analysis.compare.pair_runs` (same experiment and seed). For every
experiment and method in ``DIR/results.sqlite``, shot group (overall / many / medium / few)
and metric (MAE / MSE / GM, or the depth metrics), with S seeds of paired baseline and
method runs on the same balanced test split:

* each metric is computed per seed (the seed — model initialization and, on a series, the
  training draw — is the independent replicate) and ``baseline`` / ``candidate`` are its
  means over seeds;
* the inference rule of :mod:`analysis.inference` over seeds: the relative change of those
  means with its Fieller 95% CI, the paired t-test (``p_seed``), the TOST equivalence test
  against ± the margin (``p_equiv``), a verdict (for δ1–δ3 higher is better), and the seeds
  an undecided cell needs;
* secondary, per test sample (samples are not independent replicates of training): a paired
  bootstrap 95% CI of the seed-averaged change (``sample_ci_*``) and the Wilcoxon
  signed-rank p (``p_sample``);
* Holm within one family per question: an experiment's shot × metric cells for one method;
  a series' samplings for one method; each (method, baseline) of ``realdata methods``.

The report returns data and text; the figures are drawn by
:mod:`paper_figures.realdata_errors`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from clsreg.analysis.compare import pair_runs
from clsreg.analysis.errors import InputError
from clsreg.analysis.files import atomic_path, check_outputs, write_text_atomic
from clsreg.analysis.inference import decide_families, family_sizes, unit_row
from clsreg.analysis.stats import bootstrap_rel_change_ci, wilcoxon_p
from clsreg.analysis.store import ResultsStore
from clsreg.analysis.validate import check_choice
from clsreg.analysis.vocabulary import (
    BASELINE_METHOD,
    DEFAULT_MARGIN,
    P_EQUIV_HOLM,
    P_SAMPLE,
    P_SAMPLE_HOLM,
    P_SEED_HOLM,
    REAL_KIND,
)
from tabulate import tabulate

from .evaluate import (
    DEPTH_METRICS,
    HIGHER_IS_BETTER,
    METRICS,
    SHOTS,
    metric_from_losses,
    per_sample_terms,
)
from .pipeline import real_identity
from .tables import REAL_SAMPLINGS


@dataclass(frozen=True)
class ExperimentRuns:
    """One method against a baseline method in one experiment: predictions are (seeds,
    samples), keyed by method name."""

    experiment: str
    config: dict
    seeds: tuple[int, ...]
    target: np.ndarray
    shot: np.ndarray
    prediction: dict[str, np.ndarray]
    arrays: dict[str, np.ndarray]
    method: str = "regcls"
    baseline: str = BASELINE_METHOD

    @property
    def label(self) -> str:
        return f"{self.config['dataset']} / {self.config['sampling']} / {self.method}"


def load_runs(out_dir: str | Path) -> list[ExperimentRuns]:
    """Paired baseline and method runs, grouped by experiment and method."""
    with ResultsStore(out_dir, create=False) as store:
        records = store.records(REAL_KIND, with_arrays=True)
    if not records:
        raise InputError(f"{Path(out_dir)} holds no real-data results; run "
                         "`clsreg realdata run` first")
    grouped: dict[tuple[str, str], dict[int, tuple[dict, dict]]] = {}
    for pair in pair_runs(records, real_identity).pairs:
        recipe = pair.identity.recipe
        grouped.setdefault((recipe.experiment, pair.identity.method), {})[recipe.seed] = (
            pair.baseline, pair.candidate)
    out = []
    for (experiment, method), seeds in grouped.items():
        paired = sorted(seeds)
        first = seeds[paired[0]][0]
        target = first["arrays"]["target"]
        for s in paired:
            for record in seeds[s]:
                if not np.array_equal(record["arrays"]["target"], target):
                    raise InputError(f"experiment {experiment}: seed {s} was evaluated on "
                                     "another test split; the store is inconsistent")
        prediction = {name: np.stack([seeds[s][side]["arrays"]["prediction"] for s in paired])
                      for side, name in enumerate((BASELINE_METHOD, method))}
        out.append(ExperimentRuns(experiment, first["config"], tuple(paired), target,
                                  first["arrays"]["shot"], prediction, first["arrays"], method))
    if not out:
        raise InputError(f"{Path(out_dir)} holds no finished {BASELINE_METHOD} / method pair yet")
    order = {name: i for i, name in enumerate(REAL_SAMPLINGS)}
    return sorted(out, key=lambda r: (r.config["dataset"], order.get(r.config["sampling"], 99),
                                      r.method))


def relative_change_ci(reg_terms: np.ndarray, cls_terms: np.ndarray, metric: str,
                       seed: int = 0) -> tuple[float, float]:
    """Paired bootstrap 95% CI of the metric's relative change over the samples.

    MAE and MSE are means of the terms, so this is the shared ratio bootstrap. GM's change
    is ``exp(mean(d)) − 1`` with ``d`` the per-sample log-error differences: the shared
    bootstrap of ``mean(1 + d) / mean(1) − 1 = mean(d)`` gives its CI on the log scale.
    RMSE is √(mean e²), so its change is √(1 + MSE change) − 1, a monotone map of the CI.
    """
    if metric == "rmse":
        low, high = bootstrap_rel_change_ci(reg_terms, cls_terms, seed=seed)
        return math.sqrt(1.0 + low) - 1.0, math.sqrt(1.0 + high) - 1.0
    if metric != "gm":
        return bootstrap_rel_change_ci(reg_terms, cls_terms, seed=seed)
    difference = np.asarray(cls_terms) - np.asarray(reg_terms)
    low, high = bootstrap_rel_change_ci(np.ones_like(difference), 1.0 + difference, seed=seed)
    return math.expm1(low), math.expm1(high)


def compare(baseline: np.ndarray, candidate: np.ndarray, target: np.ndarray,
            metric: str, margin: float = DEFAULT_MARGIN) -> dict:
    """A candidate method's predictions against a baseline's on the same test samples:
    both are (seeds, samples) with seeds paired; the cell of every real-data table (finish a
    table's rows with :func:`decide`)."""
    n, seeds = int(target.size), int(baseline.shape[0])
    if n == 0:  # a shot group without test samples
        seed_base = seed_cand = np.full(seeds, math.nan)
    else:
        terms = [per_sample_terms(p, target, metric) for p in (baseline, candidate)]
        seed_base, seed_cand = (np.array([metric_from_losses(row, metric) for row in t])
                                for t in terms)
        base, cand = (t.mean(axis=0) for t in terms)
    higher = metric in HIGHER_IS_BETTER
    sample_ci = relative_change_ci(base, cand, metric) if n >= 2 else (math.nan, math.nan)
    return {
        "n_test": n, "baseline": float(seed_base.mean()), "candidate": float(seed_cand.mean()),
        **unit_row(seed_base, seed_cand, np.arange(seeds), margin, higher_is_better=higher),
        "sample_ci_low": sample_ci[0], "sample_ci_high": sample_ci[1],
        P_SAMPLE: wilcoxon_p(base, cand) if n else math.nan,
        "seeds_won": int(np.sum(seed_cand > seed_base if higher
                                else seed_cand < seed_base)) if n else 0,
    }


def compare_shot(runs: ExperimentRuns, mask: np.ndarray, metric: str,
                 margin: float = DEFAULT_MARGIN) -> dict:
    """One cell of an experiment's table: its method against its baseline on ``metric``
    over the test samples in ``mask``."""
    return compare(runs.prediction[runs.baseline][:, mask],
                   runs.prediction[runs.method][:, mask], runs.target[mask], metric, margin)


# The columns :func:`decide` adds; a table built from another table's rows drops them.
DECIDED = ("family", P_SEED_HOLM, P_EQUIV_HOLM, P_SAMPLE_HOLM, "verdict", "seeds_needed")


def decide(rows: list[dict], family_of) -> pd.DataFrame:
    """A table of :func:`compare` rows with Holm within each family (``family_of(row)``
    names its question) and the verdicts."""
    return pd.DataFrame(decide_families(rows, family_of, secondary=(P_SAMPLE,)))


def experiment_table(runs: ExperimentRuns, margin: float = DEFAULT_MARGIN) -> pd.DataFrame:
    """All shot × metric cells of one experiment and method: one Holm family."""
    rows = []
    for shot in SHOTS:
        mask = np.ones(runs.target.size, bool) if shot == "overall" else runs.shot == shot
        for metric in runs.config.get("metrics", METRICS):
            rows.append({"experiment": runs.experiment, "dataset": runs.config["dataset"],
                         "sampling": runs.config["sampling"], "method": runs.method,
                         "shot": shot, "metric": metric,
                         **compare_shot(runs, mask, metric, margin)})
    return decide(rows, lambda row: f"{runs.label}: shots × metrics")


def series_table(tables: list[pd.DataFrame], runs: list[ExperimentRuns]) -> pd.DataFrame:
    """Overall change per training sampling of one method: one Holm family."""
    rows = []
    for table, run in zip(tables, runs, strict=True):
        overall = table[table["shot"] == "overall"]
        for _, row in overall.iterrows():
            rows.append({"sampling": run.config["sampling"],
                         "imbalance_64": run.config.get("train_imbalance_64", math.nan),
                         "n_train": run.config["n_train"], **row.drop(
                             ["experiment", "dataset", "sampling", "shot", *DECIDED]).to_dict()})
    return decide(rows, lambda row: f"{row['method']} vs {BASELINE_METHOD}: "
                  f"{row['metric']} per training sampling")


def _number(value: float, digits: int = 4) -> str:
    if value is None or np.isnan(value):
        return "–"
    return "inf" if np.isinf(value) else f"{value:.{digits}g}"


def _percent(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{100 * value:+.1f}%"


def _ci(low: float, high: float) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "–"
    return f"[{100 * low:+.1f}, {100 * high:+.1f}]%"


def _p(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{value:.2g}"


TABLE_NOTE = ("Unit: the seed. change: of the mean over seeds of the per-seed metric; 95% CI: "
              "Fieller over seeds; p t: paired t over seeds; p TOST: equivalence within "
              "±{margin:.0%}; verdict from the Holm-adjusted p (Holm within the family "
              "named above each table); per-sample CI and Wilcoxon p: secondary (test "
              "samples are not independent replicates).")


def markdown_rows(table: pd.DataFrame, first: list[str], method: str) -> str:
    """A pipe table of the cells of ``table``, led by the ``first`` columns, under a line
    naming its Holm family."""
    headers = first + ["n", BASELINE_METHOD, method, "change", "95% CI (seeds)",
                       "p t (seeds), Holm", "p TOST, Holm", "verdict", "seeds won",
                       "CI (samples)", "p Wilcoxon (samples), Holm"]
    body = []
    for _, row in table.iterrows():
        body.append([row[c] if not isinstance(row[c], float) else _number(row[c])
                     for c in first] + [
            row["n_test"], _number(row["baseline"]), _number(row["candidate"]),
            _percent(row["rel_change"]), _ci(row["ci_low"], row["ci_high"]),
            _p(row[P_SEED_HOLM]), _p(row[P_EQUIV_HOLM]), row["verdict"],
            f"{row['seeds_won']}/{row['n_seeds']}",
            _ci(row["sample_ci_low"], row["sample_ci_high"]), _p(row[P_SAMPLE_HOLM])])
    return (f"{family_sizes(table.to_dict('records'))}\n\n"
            + tabulate(body, headers=headers, tablefmt="github", disable_numparse=True))


def _describe(runs: ExperimentRuns) -> str:
    c = runs.config
    if "description" in c:  # an image or video benchmark describes itself
        return f"{len(runs.seeds)} seeds, {c['description']}"
    train = c["train"]
    return (f"{len(runs.seeds)} seeds, {c['n_train']} train / {c['n_val']} val / "
            f"{c['n_test']} test rows ({c['per_bin']} per balanced bin), "
            f"{c['classes_used']} {c['binning']} classes, λ = {c['lam']:g}, "
            f"{c['regression']} loss, {train['epochs']} epochs, "
            f"{'log-' if c['log_target'] else ''}standardized target; "
            f"shots: many > {c['shots']['many']}, few < {c['shots']['few']} training rows "
            f"per bin of {c['shots']['bins']}; training imbalance (64 bins) "
            f"{_number(c.get('train_imbalance_64', math.nan), 3)}.")


def group_table(runs: list[ExperimentRuns]) -> pd.DataFrame:
    """RMSE mean ± std over the groups (Breakfast: activities, one model each) per
    experiment (split) and method: each group's RMSE pooled over its samples and averaged
    over the seeds, then the mean and standard deviation across groups."""
    rows, seen = [], set()
    for run in runs:
        if "group" not in run.arrays:
            continue
        groups = run.arrays["group"]
        for method, prediction in run.prediction.items():
            if (run.experiment, method) in seen:
                continue
            seen.add((run.experiment, method))
            per_group = [np.mean([metric_from_losses(per_sample_terms(
                seed_prediction[groups == g], run.target[groups == g], "rmse"), "rmse")
                for seed_prediction in prediction]) for g in np.unique(groups)]
            rows.append({"split": run.config["split"], "method": method,
                         "groups": len(per_group), "seeds": len(run.seeds),
                         "rmse_mean": float(np.mean(per_group)),
                         "rmse_std": float(np.std(per_group, ddof=1)) if len(per_group) > 1
                         else math.nan})
    return pd.DataFrame(rows)


def build_report(out_dir: str | Path, margin: float = DEFAULT_MARGIN
                 ) -> tuple[str, pd.DataFrame, list[ExperimentRuns]]:
    """Markdown text, the full summary table and the loaded runs of ``out_dir``."""
    runs = load_runs(out_dir)
    tables = [experiment_table(r, margin) for r in runs]
    parts = [TABLE_NOTE.format(margin=margin), ""]
    for run, table in zip(runs, tables, strict=True):
        parts += [f"## {run.label}", "", _describe(run), "",
                  markdown_rows(table, ["shot", "metric"], run.method), ""]
    summary = pd.concat(tables, ignore_index=True)
    groups = group_table(runs)
    if not groups.empty:
        body = [[r.split, r.method, f"{r.rmse_mean:.4g} ± {_number(r.rmse_std)}", r.groups,
                 r.seeds] for r in groups.itertuples()]
        parts += ["## RMSE mean ± std over activities (one model each; seeds averaged)", "",
                  tabulate(body, headers=["split", "method", "RMSE", "activities", "seeds"],
                           tablefmt="github", disable_numparse=True), ""]
    if "benchmark" in runs[0].config:  # a benchmark's experiments are not a series
        return "\n".join(parts), summary, runs
    for method in dict.fromkeys(r.method for r in runs):
        picked = [i for i, r in enumerate(runs) if r.method == method]
        if len(picked) > 1:
            series = series_table([tables[i] for i in picked], [runs[i] for i in picked])
            parts += [f"## {method}: gain per training sampling (overall)", "",
                      markdown_rows(series, ["sampling", "imbalance_64", "n_train", "metric"],
                                    method), ""]
    return "\n".join(parts), summary, runs


def write_report(out_dir: str | Path, text: str, summary: pd.DataFrame,
                 other_outputs: list[str | Path] = ()) -> list[Path]:
    """Write ``summary.csv`` and ``report.md`` of :func:`build_report`'s result, after checking
    that neither they nor ``other_outputs`` (the figures to follow) have a folder in the way."""
    out_dir = Path(out_dir)
    summary_path, report_path = out_dir / "summary.csv", out_dir / "report.md"
    check_outputs([summary_path, report_path, *other_outputs])
    write_text_atomic(summary_path, summary.to_csv(index=False))
    write_text_atomic(report_path, f"# Each method against {BASELINE_METHOD} on real data\n\n"
                      + text)
    return [summary_path, report_path]


def figure_stem(run: ExperimentRuns, runs: list[ExperimentRuns]) -> str:
    """``errors_per_bin_<sampling>``, with the method when the folder holds several."""
    several = len({r.method for r in runs}) > 1
    return f"errors_per_bin_{run.config['sampling']}" + (f"_{run.method}" if several else "")


def methods_table(runs: list[ExperimentRuns], metric: str = "mse",
                  margin: float = DEFAULT_MARGIN) -> pd.DataFrame:
    """Every method against reg and against regcls (``versus``), overall, per experiment (one
    sampling of a series, or one table), through :func:`compare`; one Holm family per
    (method, versus) over the experiments. ``baseline`` and ``candidate`` are the two metric
    values."""
    rows = []
    for experiment in dict.fromkeys(r.experiment for r in runs):
        group = [r for r in runs if r.experiment == experiment]
        predictions = {m: p for r in group for m, p in r.prediction.items()}
        first = group[0]
        for baseline in ("reg", "regcls"):
            if baseline not in predictions:
                continue
            for method in predictions:
                if method in (baseline, BASELINE_METHOD):
                    continue
                rows.append({"dataset": first.config["dataset"],
                             "sampling": first.config["sampling"], "versus": baseline,
                             "method": method, "metric": metric,
                             **compare(predictions[baseline], predictions[method],
                                       first.target, metric, margin)})
    return decide(rows, lambda row: f"{row['method']} vs {row['versus']}")


METHODS_METRIC = "mse"
METHODS_COLUMNS = ["dataset", "sampling", "versus", "method", "change", "ci", P_SEED_HOLM,
                   P_EQUIV_HOLM, "verdict", "seeds_won", P_SAMPLE_HOLM]


def write_methods(out_dir: str | Path, metric: str | None = None,
                  margin: float = DEFAULT_MARGIN) -> tuple[str, Path]:
    """``clsreg realdata methods``: :func:`methods_table` of ``out_dir`` written to
    ``methods.csv``; returns the printed table (under its Holm families) and the path."""
    metric = metric or METHODS_METRIC
    check_choice("metric", metric, tuple(dict.fromkeys(METRICS + DEPTH_METRICS)))
    table = methods_table(load_runs(out_dir), metric, margin)
    path = Path(out_dir) / "methods.csv"
    with atomic_path(path) as temporary:
        table.to_csv(temporary, index=False, float_format="%.6g")
    shown = table.assign(
        change=[f"{100 * v:+.1f}%" for v in table["rel_change"]],
        ci=[f"[{100 * a:+.1f}, {100 * b:+.1f}]" for a, b in zip(table["ci_low"],
                                                                 table["ci_high"], strict=True)])
    return (f"{family_sizes(table.to_dict('records'))}\n\n"
            f"{shown[METHODS_COLUMNS].to_string(index=False)}"), path
