"""Every number of README.md's "What we found" (and of the docs' generated blocks), rendered
from the committed stores in ``results/`` by the package's own reports (issue 22, item 5).

A document marks each generated part with a pair of HTML comments::

    <!-- findings:controls -->
    ...rendered text...
    <!-- /findings:controls -->

:func:`render_document` rewrites the text between each pair from the stores;
``docs/build_findings.py`` writes the files, and ``tests/test_findings.py`` fails when a
committed document and its stores disagree, or when a result number (a percentage, a p, a
ρ) in "What we found" stands outside a generated block. The statistics are those of every
table (:mod:`analysis.inference`): the seed is the unit, Holm within one family per question.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

from clsreg.analysis.errors import InputError
from clsreg.analysis.inference import verdict_tally

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
BLOCK = re.compile(r"(<!-- findings:(?P<name>[\w:-]+) -->\n)(?P<body>.*?)"
                   r"(<!-- /findings:(?P=name) -->)", re.DOTALL)
# Per-pair bootstrap resamples: only the secondary per-pair CI depends on them, and no
# block shows it.
RESAMPLES = 200
# 3 settings × 4 samplings × 10 functions × 5 seeds × (reg + reg+cls at 5 class counts).
PAPER_GRID_MODELS = 3 * 4 * 10 * 5 * 6


def pct(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{100 * value:+.1f}%".replace("-", "−")


def interval(low: float, high: float) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return "[—]"
    return f"[{100 * low:+.1f}, {100 * high:+.1f}]".replace("-", "−")


def p_text(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.2g}"


def cell(row: dict) -> str:
    """A change with its seed-level CI, Holm p and verdict, as one table cell."""
    return (f"{pct(row['rel_change'])} {interval(row['ci_low'], row['ci_high'])}, "
            f"p = {p_text(row['p_seed_holm'])}, {row['verdict']}")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


# ------------------------------------------------------------------------------ 1D
def controls_block(results: Path = RESULTS) -> str:
    """The controls table (clean data, uniform and severe) and the search's verdict."""
    from clsreg.simulate.controls import control_rows, search_rows, verdict
    from clsreg.simulate.report import load_records

    records = load_records(results / "controls_quick")
    rows, search = control_rows(records, RESAMPLES), search_rows(records, RESAMPLES)
    samplings = list(dict.fromkeys(r["sampling"] for r in rows))
    body = []
    for control in dict.fromkeys(r["control"] for r in rows):
        by_sampling = {r["sampling"]: r for r in rows if r["control"] == control}
        body.append([control] + [cell(by_sampling[s]) if s in by_sampling else "—"
                                 for s in samplings])
    seeds = rows[0]["n_seeds"]
    note = (f"Change of the mean test MSE on clean data ({seeds} seeds; C = 64), its "
            f"Fieller 95% CI over seeds, the paired t-test's p over seeds Holm-adjusted "
            f"within each control (one question each, {len(samplings)} cells), and the "
            f"verdict (TOST margin ±5%).")
    return "\n".join([note, "", markdown_table(["control", *samplings], body), "",
                      verdict(search)])


def grid_block(store: str, results: Path = RESULTS, expected: int | None = None) -> str:
    """A paper grid per setting × sampling: the range of changes over the class counts and
    how many class counts got each verdict (Holm over the grid's cells); a store holding fewer
    than ``expected`` models says how far it is instead (a grid is finished across runs)."""
    from clsreg.analysis.vocabulary import SAMPLINGS, SETTINGS
    from clsreg.simulate.report import load_records, paired_cells, summarize

    folder = results / store
    if not (folder / "results.sqlite").is_file():
        return f"(`results/{store}` is not stored yet.)"
    records = load_records(folder)
    if expected is not None and len(records) < expected:
        return (f"(`results/{store}` holds {len(records):,} of the grid's {expected:,} models so "
                f"far; its table follows when the grid is complete: `clsreg simulate run "
                f"--preset paper --config results/{store}/grid.toml --out results/{store}` "
                f"resumes it.)")
    rows = summarize(paired_cells(records), RESAMPLES)
    body = []
    for setting in SETTINGS:
        line = [setting]
        for sampling in SAMPLINGS:
            cells = [r for r in rows if (r["setting"], r["sampling"]) == (setting, sampling)]
            if not cells:
                line.append("—")
                continue
            changes = sorted(r["rel_change"] for r in cells)
            span = pct(changes[0]) if len(changes) == 1 else (
                f"{pct(changes[0])} … {pct(changes[-1])}")
            line.append(f"{span} ({verdict_tally(cells)})")
        body.append(line)
    seeds = max(r["n_seeds"] for r in rows)
    counts = sorted({r["num_classes"] for r in rows})
    note = (f"Change of the mean balanced test MSE of reg+cls against reg, range over C = "
            f"{', '.join(map(str, counts))}, and the verdicts of those {len(counts)} cells "
            f"({seeds} seeds each; Holm over all {len(rows)} cells of the grid; "
            f"`clsreg simulate report results/{store}`). Overall: {verdict_tally(rows)}.")
    return "\n".join([note, "", markdown_table(["setting", *SAMPLINGS], body)])


def search_block(results: Path = RESULTS) -> str:
    """The search: every reg+cls variant without decay against reg of its own recipe and
    against the best-regularized reg."""
    from clsreg.simulate.controls import search_rows
    from clsreg.simulate.report import load_records

    rows = search_rows(load_records(results / "controls_quick"), RESAMPLES)
    keys = list(dict.fromkeys((r["setting"], r["sampling"], r["lam"], r["binning"], r["lr"],
                               r["epochs"]) for r in rows))
    body = []
    for key in keys:
        line = [key[1], f"{key[2]:g}", key[3], f"{key[4]:g}", str(key[5])]
        for versus in ("reg, no decay", "best-regularized reg"):
            match = [r for r in rows if r["versus"] == versus and (
                r["setting"], r["sampling"], r["lam"], r["binning"], r["lr"], r["epochs"]) == key]
            line.append(cell(match[0]) if match else "—")
        body.append(line)
    own = [r for r in rows if r["versus"] == "reg, no decay"]
    best = [r for r in rows if r["versus"] == "best-regularized reg"]
    return "\n".join([
        f"Clean data, C = 64, {rows[0]['n_seeds']} seeds; Holm within each baseline's "
        f"{len(own)} cells. Against reg of the same recipe: {verdict_tally(own)}; against the "
        f"best-regularized reg: {verdict_tally(best)}.", "",
        markdown_table(["sampling", "λ", "bins", "lr", "epochs", "vs reg, same recipe",
                        "vs best-regularized reg"], body)])


def fidelity_block(results: Path = RESULTS) -> str:
    """The study's logged cells beside ours (released generator, clsreg protocol), C = 64."""
    from clsreg.analysis.vocabulary import SAMPLINGS, SETTINGS
    from clsreg.paper_figures.fidelity import SHOWN_CLASSES, study_rows
    from clsreg.simulate.report import load_records, paired_cells, summarize

    sources = {"study (its logs)": study_rows()}
    for name, store in (("ours, released generator", "paper_released"),
                        ("ours, clsreg protocol", "paper_h200")):
        sources[name] = summarize(paired_cells(load_records(results / store)), RESAMPLES)
    body = []
    for setting in SETTINGS:
        for name, rows in sources.items():
            line = [setting, name]
            for sampling in SAMPLINGS:
                match = [r for r in rows if (r["setting"], r["sampling"]) == (setting, sampling)
                         and int(r["num_classes"]) == SHOWN_CLASSES]
                line.append(f"{pct(match[0]['rel_change'])} "
                            f"{interval(match[0]['ci_low'], match[0]['ci_high'])}, "
                            f"{match[0]['verdict']}" if match else "—")
            body.append(line)
    return "\n".join([
        f"C = {SHOWN_CLASSES}; change of the mean test MSE of reg+cls against reg, Fieller 95% "
        f"CI over the 5 seeds, verdict with Holm over each source's 60 cells.", "",
        markdown_table(["setting", "source", *SAMPLINGS], body)])


# ------------------------------------------------------------------------------ theory
def _check_row(target: str) -> dict:
    import csv

    path = ROOT / "docs" / "theory" / "check_paper_h200" / f"check_{target}.csv"
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            if row["group"] == "clean+noisy" and row["form"] == "absolute":
                return {k: (float(v) if k not in ("target", "regime", "group", "form",
                                                  "predictor", "cluster", "theory_applies")
                            else v) for k, v in row.items()}
    raise InputError(f"{path} has no clean+noisy row")


def theory_block(results: Path = RESULTS) -> str:
    """The theory check's headline correlations (CIs resample functions) against σ alone,
    and whether ``theory gap``'s calibration predicts held-out tables."""
    from clsreg.analysis.theory_calibration import load_calibration

    def rho(value, low, high) -> str:
        return f"{value:.2f} [{low:.2f}, {high:.2f}]"

    parts = []
    for target, what in (("excess", "the excess MSE that imbalance adds to plain "
                                    "regression"), ("gain", "the reg − reg+cls gains")):
        r = _check_row(target)
        parts.append(f"{what} at Spearman ρ = "
                     f"{rho(r['spearman'], r['spearman_low'], r['spearman_high'])} "
                     f"(σ alone: {rho(r['sigma_spearman'], r['sigma_low'], r['sigma_high'])}; "
                     f"the theory over σ: {r['over_sigma']:+.2f} [{r['over_sigma_low']:+.2f}, "
                     f"{r['over_sigma_high']:+.2f}])")
    power = load_calibration().power
    return (f"Per cell of `results/paper_h200` (clean+noisy, seeds averaged; 95% CIs resample "
            f"the {int(_check_row('excess')['num_clusters'])} functions), the theory's "
            f"prediction ranks {parts[0]}, and {parts[1]}. `theory gap`'s calibration on real "
            f"tables: {power.describe()} — "
            + ("it predicts held-out tables." if power.has_power
               else "no predictive power, so `theory gap` gives no verdict and says to "
                    "measure instead."))


# ------------------------------------------------------------------------------ methods
def methods_block(results: Path = RESULTS) -> str:
    """The methods study's best method per cell, and reg+cls against reg there."""
    from clsreg.simulate.methods_table import best_rows, methods_rows
    from clsreg.simulate.report import load_records

    rows = methods_rows(load_records(results / "methods"), RESAMPLES)
    by_key = {(r["baseline"], r["setting"], r["sampling"], r["method"]): r for r in rows}
    body = []
    for best in best_rows(rows):
        key = (best["setting"], best["sampling"])
        winner = by_key.get(("reg", *key, best["best"]))
        regcls = by_key.get(("reg", *key, "regcls"))
        body.append([best["setting"], best["sampling"], best["best"],
                     cell(winner) if winner else "—", cell(regcls) if regcls else "—"])
    seeds = rows[0]["n_seeds"]
    note = (f"`results/methods`: best method per cell (lowest mean test MSE) and reg+cls, each "
            f"against reg ({seeds} seeds; Holm within each (method, baseline) family).")
    return "\n".join([note, "", markdown_table(["setting", "sampling", "best", "best vs reg",
                                                "reg+cls vs reg"], body)])


# ------------------------------------------------------------------------------ real data
def _real_rows(folder: Path, versus: str = "reg") -> list[dict]:
    from clsreg.realdata.report import load_runs, methods_table

    table = methods_table(load_runs(folder), "mse")
    return [r for r in table.to_dict("records") if r["versus"] == versus]


def real_block(results: Path = RESULTS) -> str:
    """The diamonds imbalance series and hotel_rates: every method against reg, overall MSE."""
    series = _real_rows(results / "methods_real" / "diamonds_series")
    hotel = _real_rows(results / "methods_real" / "hotel_rates")
    methods = list(dict.fromkeys(r["method"] for r in series))
    samplings = list(dict.fromkeys(r["sampling"] for r in series))
    body = [[f"diamonds, {s}"] + [cell(next(r for r in series if r["sampling"] == s
                                              and r["method"] == m)) for m in methods]
            for s in samplings]
    body.append(["hotel_rates, natural"] + [cell(next(r for r in hotel if r["method"] == m))
                                            for m in methods])
    seeds = series[0]["n_seeds"]
    note = (f"Overall balanced-test MSE of each method against reg ({seeds} seeds; Holm "
            f"within each method over the series' samplings, and within each method on "
            f"hotel_rates; `clsreg realdata methods results/methods_real/...`).")
    return "\n".join([note, "", markdown_table(["training targets", *methods], body)])


def fashion_block(results: Path = RESULTS) -> str:
    """Fashion-MNIST rotation: reg+cls against reg overall and per shot, long-tailed and
    uniform training angles."""
    from clsreg.realdata.report import build_report

    lines = []
    for store, what in (("fashion_rotation", "long-tailed training angles"),
                        ("fashion_rotation_uniform", "uniform training angles")):
        _, summary, _ = build_report(results / store)
        rows = summary[summary["method"] == "regcls"].to_dict("records")
        picked = [r for r in rows if r["n_test"] > 0 and (r["shot"], r["metric"]) in
                  (("overall", "mse"), ("many", "mae"), ("medium", "mae"), ("few", "mae"))]
        cells = "; ".join(f"{r['shot']} {r['metric'].upper()} {cell(r)}" for r in picked)
        lines.append(f"- {what} ({rows[0]['n_seeds']} seeds; Holm over the 12 shot × metric "
                     f"cells): {cells}.")
    return "\n".join(lines)


def series_block(store: str = "methods_real/diamonds_series", method: str = "regcls") -> str:
    """One method against reg per training sampling of a series, overall MAE / MSE / GM
    (Holm per metric over the samplings)."""
    from clsreg.realdata.report import load_runs, methods_table

    runs = load_runs(RESULTS / store)
    tables = {m: [r for r in methods_table(runs, m).to_dict("records")
                  if r["versus"] == "reg" and r["method"] == method] for m in ("mae", "mse", "gm")}
    imbalance = {r.config["sampling"]: r.config.get("train_imbalance_64", math.nan)
                 for r in runs}
    body = [[row["sampling"], f"{imbalance[row['sampling']]:.3g}"]
            + [cell(next(r for r in tables[m] if r["sampling"] == row["sampling"]))
               for m in tables] for row in tables["mse"]]
    return "\n".join([
        f"`results/{store}`, {method} against reg on the balanced test split "
        f"({tables['mse'][0]['n_seeds']} seeds; Holm per metric over the samplings).", "",
        markdown_table(["training sampling", "imbalance (64 bins)", "MAE", "MSE", "GM"], body)])


def experiment_block(store: str, method: str = "regcls") -> str:
    """Every shot × metric cell of one method against reg in a real-data store: the seed-level
    statistics and, secondary, the per-sample CI and Wilcoxon p."""
    from clsreg.realdata.report import build_report

    _, summary, _ = build_report(RESULTS / store)
    rows = [r for r in summary.to_dict("records") if r["method"] == method]
    body = [[r["shot"], r["metric"].upper(), str(r["n_test"]), f"{r['baseline']:.4g}",
             f"{r['candidate']:.4g}", cell(r) if r["n_test"] else "—",
             f"{r['seeds_won']}/{r['n_seeds']}",
             interval(r["sample_ci_low"], r["sample_ci_high"]), p_text(r["p_sample_holm"])]
            for r in rows]
    return "\n".join([
        f"`results/{store}`, {method} against reg, {rows[0]['n_seeds']} seeds; Holm over the "
        f"{len(rows)} shot × metric cells. Secondary: the per-sample CI and Wilcoxon p (test "
        f"samples are not independent replicates of training).", "",
        markdown_table(["shot", "metric", "n", "reg", method,
                        "change [seed CI], Holm p, verdict", "seeds won", "per-sample CI",
                        "Wilcoxon p (Holm)"], body)])


BLOCKS: dict[str, Callable[[], str]] = {
    "controls": controls_block,
    "search": search_block,
    "fidelity": fidelity_block,
    "grid-paper_h200": lambda: grid_block("paper_h200"),
    "grid-paper_wd0": lambda: grid_block("paper_wd0", expected=PAPER_GRID_MODELS),
    "theory": theory_block,
    "methods": methods_block,
    "real": real_block,
    "fashion": fashion_block,
    "fashion-table": lambda: experiment_block("fashion_rotation"),
    "series-table": lambda: series_block(),
}


def render_document(text: str, cache: dict[str, str] | None = None) -> str:
    """``text`` with every findings block rendered anew from the stores (``cache`` keeps a
    block rendered once when several documents share it)."""
    cache = {} if cache is None else cache

    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in BLOCKS:
            raise InputError(f"unknown findings block {name!r}; known: {', '.join(BLOCKS)}")
        if name not in cache:
            cache[name] = BLOCKS[name]()
        return f"{match.group(1)}{cache[name]}\n{match.group(4)}"

    return BLOCK.sub(replace, text)


DOCUMENTS = ("README.md", "docs/fidelity.md", "docs/methods.md", "docs/realdata.md",
             "docs/theory.md", "docs/statistics.md")
# A result number: a signed or plain percentage, or "p =", "ρ =" with a value.
RESULT_NUMBER = re.compile(r"[−+-]?\d+(?:\.\d+)?\s?%|\bp\s?[=<]\s?\d|ρ\s?=\s?[−-]?\d")


def loose_numbers(text: str, section: str = "## What we found") -> list[str]:
    """Result numbers in ``section`` of a document that stand outside a generated block."""
    start = text.find(section)
    if start < 0:
        return []
    end = text.find("\n## ", start + len(section))
    body = BLOCK.sub("", text[start:end if end > 0 else len(text)])
    body = re.sub(r"95% CI|±\d+%", "", body)  # the rule's level and margin, not results
    return [m.group(0) for m in RESULT_NUMBER.finditer(body)]
