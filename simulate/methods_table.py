"""The methods study's tables: every method against reg and against reg+cls, per cell.

Each comparison is the one comparison (:func:`analysis.compare.pair_runs`, then the paired
and seed-level statistics of :func:`simulate.report.stat_row`), with a different baseline
method: reg (is the method any better than plain regression?) and regcls (is it better than
the study's classification loss?). Holm adjusts over *all* comparisons of the study. Class
counts are compared like with like: a method with a head against regcls of its own C.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from clsreg.analysis.errors import InputError
from clsreg.analysis.files import atomic_path
from clsreg.analysis.vocabulary import BASELINE_METHOD, SAMPLINGS, SETTINGS
from clsreg.simulate.report import add_holm, format_rows, load_records, paired_cells, stat_row

BASELINES = (BASELINE_METHOD, "regcls")


def _compare(records: list[dict], baseline: str, num_resamples: int) -> list[dict]:
    # Against regcls, reg itself is left out: it is the reg row's inverse.
    methods = sorted({r["config"]["model"] for r in records} - {baseline, BASELINE_METHOD})
    if baseline != BASELINE_METHOD and not methods:
        return []
    cells = paired_cells(records, None if baseline == BASELINE_METHOD else methods, baseline)
    return [{"setting": cell.setting, "sampling": cell.sampling, "method": cell.method,
             "baseline": baseline,
             **stat_row(cell.baseline, cell.candidate, cell.seeds, num_resamples,
                        ("mse_baseline", "mse_method"))} for cell in cells]


def methods_rows(records: list[dict], num_resamples: int = 10_000) -> list[dict]:
    """Every method against each of :data:`BASELINES`, per (setting, sampling), Holm over
    all rows. Stores with several class counts are compared per count."""
    counts = sorted({int(r["config"]["num_classes"]) for r in records} - {0}) or [0]
    rows = []
    for count in counts:
        subset = [r for r in records if int(r["config"]["num_classes"]) in (0, count)]
        for baseline in BASELINES:
            if not any(r["config"]["model"] == baseline for r in subset):
                continue
            for row in _compare(subset, baseline, num_resamples):
                rows.append({**row, "num_classes": count})
    if not rows:
        raise InputError("no method run pairs with a reg or regcls run in this store")
    order = {name: i for i, name in enumerate(SETTINGS + SAMPLINGS)}
    rows.sort(key=lambda r: (r["baseline"] != BASELINE_METHOD, order.get(r["setting"], 99),
                             order.get(r["sampling"], 99), r["num_classes"], r["method"]))
    return add_holm(rows)


def best_rows(rows: list[dict]) -> list[dict]:
    """Per (setting, sampling): the method with the lowest mean test MSE, its change against
    reg and against regcls, and whether each is significant (seed-level Holm p < 0.05)."""
    vs_reg = [r for r in rows if r["baseline"] == BASELINE_METHOD]
    by_cell: dict[tuple, list[dict]] = defaultdict(list)
    for row in vs_reg:
        by_cell[(row["setting"], row["sampling"])].append(row)
    best = []
    for (setting, sampling), members in by_cell.items():
        reg_mse = members[0]["mse_baseline"]
        winner = min(members, key=lambda r: r["mse_method"])
        if winner["mse_method"] >= reg_mse:
            name, versus_reg = BASELINE_METHOD, {"rel_change": 0.0, "p_holm": math.nan,
                                                  "p_seed_holm": math.nan}
        else:
            name, versus_reg = winner["method"], winner
        versus_cls = next((r for r in rows if r["baseline"] == "regcls"
                           and r["setting"] == setting and r["sampling"] == sampling
                           and r["method"] == name), None)
        regcls = next((r for r in members if r["method"] == "regcls"), None)
        best.append({
            "setting": setting, "sampling": sampling, "best": name,
            "vs_reg": versus_reg["rel_change"], "p_vs_reg": versus_reg["p_holm"],
            "p_seed_vs_reg": versus_reg["p_seed_holm"],
            "vs_regcls": (versus_cls["rel_change"] if versus_cls is not None
                          else 0.0 if name == "regcls"
                          else (reg_mse / regcls["mse_method"] - 1 if regcls else math.nan)),
            "p_vs_regcls": versus_cls["p_holm"] if versus_cls is not None else math.nan,
            "p_seed_vs_regcls": (versus_cls["p_seed_holm"] if versus_cls is not None
                                 else math.nan),
            "regcls_vs_reg": regcls["rel_change"] if regcls else math.nan,
            "p_regcls_vs_reg": regcls["p_holm"] if regcls else math.nan,
            "p_seed_regcls_vs_reg": regcls["p_seed_holm"] if regcls else math.nan})
    return best


def write_csv(rows: list[dict], path: Path) -> Path:
    import pandas as pd

    with atomic_path(path) as temporary:
        pd.DataFrame(rows).to_csv(temporary, index=False, float_format="%.6g")
    return path


def methods_report(directory: Path, num_resamples: int = 10_000
                   ) -> tuple[list[dict], list[dict], list[Path]]:
    """Both tables of a store, written as ``methods.csv`` and ``best.csv`` beside it."""
    rows = methods_rows(load_records(directory), num_resamples)
    best = best_rows(rows)
    paths = [write_csv(rows, Path(directory) / "methods.csv"),
             write_csv(best, Path(directory) / "best.csv")]
    return rows, best, paths


def methods_text(directory: Path, num_resamples: int = 10_000) -> str:
    """What ``clsreg simulate methods`` prints: both tables and the CSVs it wrote."""
    rows, best, paths = methods_report(directory, num_resamples)
    return "\n".join([format_methods(rows, best), *(f"-> {path}" for path in paths)])


def registry_text() -> str:
    """What ``clsreg methods`` prints: the method registry (what --methods accepts), the
    regression losses (what --loss accepts) and the baseline."""
    from clsreg.core.methods import METHODS, REGRESSION_LOSSES
    from clsreg.core.methods import format_methods as format_registry

    return (f"{format_registry(METHODS.values())}\n\nregression losses (--loss): "
            f"{', '.join(REGRESSION_LOSSES)}; baseline: {BASELINE_METHOD}")


def format_methods(rows: list[dict], best: list[dict]) -> str:
    """The best-method table, then every comparison."""
    def pct(value: float) -> str:
        return f"{100 * value:+.1f}%" if math.isfinite(value) else "—"

    def p(value: float) -> str:
        return f"{value:.2g}" if math.isfinite(value) else "—"

    lines = ["Best method per cell (lowest mean test MSE). Changes are of mean test MSE; "
             "p: Wilcoxon over the paired runs / t-test over seeds, each Holm-adjusted over "
             "every comparison:", ""]
    header = ["setting", "sampling", "best", "vs reg", "p", "vs regcls", "p",
              "regcls vs reg", "p"]

    def ps(first: float, second: float) -> str:
        return f"{p(first)} / {p(second)}"

    table = [[b["setting"], b["sampling"], b["best"], pct(b["vs_reg"]),
              ps(b["p_vs_reg"], b["p_seed_vs_reg"]), pct(b["vs_regcls"]),
              ps(b["p_vs_regcls"], b["p_seed_vs_regcls"]), pct(b["regcls_vs_reg"]),
              ps(b["p_regcls_vs_reg"], b["p_seed_regcls_vs_reg"])] for b in best]
    from tabulate import tabulate

    lines.append(tabulate(table, headers=header, tablefmt="github", disable_numparse=True))
    lines += ["", "Every comparison:", ""]
    lines.append(format_rows(rows, ["baseline", "setting", "sampling", "num_classes", "method",
                                    "n_pairs", "mse_baseline", "mse_method", "rel_change",
                                    "ci_low", "ci_high", "win_rate", "p_holm",
                                    "p_seed_holm"]))
    return "\n".join(lines)
