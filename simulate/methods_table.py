"""The methods study's tables: every method against reg and against reg+cls, per cell.

Each comparison is the one comparison (:func:`analysis.compare.pair_runs`, then the
seed-level and per-pair statistics of :func:`simulate.report.stat_row`), with a different
baseline method: reg (is the method any better than plain regression?) and regcls (is it
better than the study's classification loss?). Each (method, baseline) pair is one question,
so one Holm family over its cells. Class counts are compared like with like: a method with a
head against regcls of its own C.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from clsreg.analysis.errors import InputError
from clsreg.analysis.files import atomic_path
from clsreg.analysis.vocabulary import BASELINE_METHOD, DEFAULT_MARGIN, SAMPLINGS, SETTINGS
from clsreg.simulate.report import (
    decide,
    format_rows,
    load_records,
    paired_cells,
    stat_row,
    table_header,
)

BASELINES = (BASELINE_METHOD, "regcls")


def _compare(records: list[dict], baseline: str, num_resamples: int,
             margin: float) -> list[dict]:
    # Against regcls, reg itself is left out: it is the reg row's inverse.
    methods = sorted({r["config"]["model"] for r in records} - {baseline, BASELINE_METHOD})
    if baseline != BASELINE_METHOD and not methods:
        return []
    cells = paired_cells(records, None if baseline == BASELINE_METHOD else methods, baseline)
    return [{"setting": cell.setting, "sampling": cell.sampling, "method": cell.method,
             "baseline": baseline,
             **stat_row(cell.baseline, cell.candidate, cell.seeds, num_resamples,
                        ("mse_baseline", "mse_method"), margin)} for cell in cells]


def methods_rows(records: list[dict], num_resamples: int = 10_000,
                 margin: float = DEFAULT_MARGIN) -> list[dict]:
    """Every method against each of :data:`BASELINES`, per (setting, sampling); one Holm
    family per (method, baseline). Stores with several class counts are compared per
    count."""
    counts = sorted({int(r["config"]["num_classes"]) for r in records} - {0}) or [0]
    rows = []
    for count in counts:
        subset = [r for r in records if int(r["config"]["num_classes"]) in (0, count)]
        for baseline in BASELINES:
            if not any(r["config"]["model"] == baseline for r in subset):
                continue
            for row in _compare(subset, baseline, num_resamples, margin):
                rows.append({**row, "num_classes": count})
    if not rows:
        raise InputError("no method run pairs with a reg or regcls run in this store")
    order = {name: i for i, name in enumerate(SETTINGS + SAMPLINGS)}
    rows.sort(key=lambda r: (r["baseline"] != BASELINE_METHOD, order.get(r["setting"], 99),
                             order.get(r["sampling"], 99), r["num_classes"], r["method"]))
    several = len(counts) > 1
    return decide(rows, lambda r: f"{r['method']} vs {r['baseline']}"
                  + (f", C = {r['num_classes']}" if several else ""))


def best_rows(rows: list[dict]) -> list[dict]:
    """Per (setting, sampling): the method with the lowest mean test MSE, its change against
    reg and against regcls, each with its seed-level Holm p and verdict."""
    vs_reg = [r for r in rows if r["baseline"] == BASELINE_METHOD]
    by_cell: dict[tuple, list[dict]] = defaultdict(list)
    for row in vs_reg:
        by_cell[(row["setting"], row["sampling"])].append(row)
    best = []
    for (setting, sampling), members in by_cell.items():
        reg_mse = members[0]["mse_baseline"]
        winner = min(members, key=lambda r: r["mse_method"])
        if winner["mse_method"] >= reg_mse:
            name, versus_reg = BASELINE_METHOD, {"rel_change": 0.0, "p_seed_holm": math.nan,
                                                  "verdict": "—"}
        else:
            name, versus_reg = winner["method"], winner
        versus_cls = next((r for r in rows if r["baseline"] == "regcls"
                           and r["setting"] == setting and r["sampling"] == sampling
                           and r["method"] == name), None)
        regcls = next((r for r in members if r["method"] == "regcls"), None)
        best.append({
            "setting": setting, "sampling": sampling, "best": name,
            "vs_reg": versus_reg["rel_change"], "p_seed_vs_reg": versus_reg["p_seed_holm"],
            "verdict_vs_reg": versus_reg["verdict"],
            "vs_regcls": (versus_cls["rel_change"] if versus_cls is not None
                          else 0.0 if name == "regcls"
                          else (reg_mse / regcls["mse_method"] - 1 if regcls else math.nan)),
            "p_seed_vs_regcls": (versus_cls["p_seed_holm"] if versus_cls is not None
                                 else math.nan),
            "verdict_vs_regcls": versus_cls["verdict"] if versus_cls is not None else "—",
            "regcls_vs_reg": regcls["rel_change"] if regcls else math.nan,
            "p_seed_regcls_vs_reg": regcls["p_seed_holm"] if regcls else math.nan,
            "verdict_regcls_vs_reg": regcls["verdict"] if regcls else "—"})
    return best


def write_csv(rows: list[dict], path: Path) -> Path:
    import pandas as pd

    with atomic_path(path) as temporary:
        pd.DataFrame(rows).to_csv(temporary, index=False, float_format="%.6g")
    return path


def methods_report(directory: Path, num_resamples: int = 10_000,
                   margin: float = DEFAULT_MARGIN) -> tuple[list[dict], list[dict], list[Path]]:
    """Both tables of a store, written as ``methods.csv`` and ``best.csv`` beside it."""
    rows = methods_rows(load_records(directory), num_resamples, margin)
    best = best_rows(rows)
    paths = [write_csv(rows, Path(directory) / "methods.csv"),
             write_csv(best, Path(directory) / "best.csv")]
    return rows, best, paths


def methods_text(directory: Path, num_resamples: int = 10_000,
                 margin: float = DEFAULT_MARGIN) -> str:
    """What ``clsreg simulate methods`` prints: both tables and the CSVs it wrote."""
    rows, best, paths = methods_report(directory, num_resamples, margin)
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
             "p: t-test over seeds, Holm-adjusted within its (method, baseline) family; "
             "verdicts as in the table below:", ""]
    header = ["setting", "sampling", "best", "vs reg", "p", "verdict", "vs regcls", "p",
              "verdict", "regcls vs reg", "p", "verdict"]
    table = [[b["setting"], b["sampling"], b["best"], pct(b["vs_reg"]), p(b["p_seed_vs_reg"]),
              b["verdict_vs_reg"], pct(b["vs_regcls"]), p(b["p_seed_vs_regcls"]),
              b["verdict_vs_regcls"], pct(b["regcls_vs_reg"]), p(b["p_seed_regcls_vs_reg"]),
              b["verdict_regcls_vs_reg"]] for b in best]
    from tabulate import tabulate

    lines.append(tabulate(table, headers=header, tablefmt="github", disable_numparse=True))
    lines += ["", "Every comparison:", "", table_header(rows), ""]
    lines.append(format_rows(rows, ["baseline", "setting", "sampling", "num_classes", "method",
                                    "mse_baseline", "mse_method", "rel_change", "ci_low",
                                    "ci_high", "p_seed_holm", "p_equiv_holm", "verdict",
                                    "p_pair_holm"]))
    return "\n".join(lines)
