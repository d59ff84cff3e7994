"""Real data: per experiment and method, the per-shot table of MAE / MSE / GM against reg
with paired CIs and Holm-adjusted p-values (the real-data report's tables)."""

from __future__ import annotations

from pathlib import Path

from clsreg.analysis.vocabulary import P_EQUIV_HOLM, P_SAMPLE_HOLM, P_SEED_HOLM
from clsreg.paper_figures.results import MissingResults, Results, run_alone
from clsreg.paper_figures.table import Table, interval, number, p_value, percent

COLUMNS = ["experiment", "shot", "metric", "n", "reg", "method", "change", "95% CI (seeds)",
           "p (seeds, Holm)", "TOST p (Holm)", "verdict", "seeds won", "p (samples, Holm)"]


def build(results: Results) -> Table:
    from clsreg.realdata.report import build_report

    if not results.real:
        raise MissingResults("no real-data store (run clsreg realdata run)")
    cells = []
    for folder in results.real:
        _, summary, _ = build_report(folder)
        for _, r in summary.iterrows():
            if r["metric"] == "gm":
                continue
            cells.append([f"{r['dataset']} / {r['sampling']} / {r['method']}", r["shot"],
                          r["metric"], str(r["n_test"]), number(r["baseline"]),
                          number(r["candidate"]), percent(r["rel_change"]),
                          interval(r["ci_low"], r["ci_high"]), p_value(r[P_SEED_HOLM]),
                          p_value(r[P_EQUIV_HOLM]), r["verdict"],
                          f"{r['seeds_won']}/{r['n_seeds']}", p_value(r[P_SAMPLE_HOLM])])
    return Table("table_realdata", "Real data: each method against reg, per shot", COLUMNS,
                 cells, "Balanced test splits; shots by training count per target bin "
                 "(many > 100, few < 20). Unit: the seed: change of the mean per-seed metric "
                 "with its Fieller CI over seeds, paired t and TOST (±5%) p, Holm within each "
                 "experiment and method (one question); the per-sample Wilcoxon p is "
                 "secondary (GM in the folder's own report.md).")


def draw(results: Results, out: Path) -> list[Path]:
    """``table_realdata.md``."""
    return build(results).write(out)


if __name__ == "__main__":
    run_alone(draw)
