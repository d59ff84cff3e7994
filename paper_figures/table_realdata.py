"""Real data: per experiment and method, the per-shot table of MAE / MSE / GM against reg
with paired CIs and Holm-adjusted p-values (the real-data report's tables)."""

from __future__ import annotations

from pathlib import Path

from clsreg.analysis.vocabulary import P_SAMPLE_HOLM, P_SEED_HOLM
from clsreg.paper_figures.results import MissingResults, Results, run_alone
from clsreg.paper_figures.table import Table, interval, number, p_value, percent

COLUMNS = ["experiment", "shot", "metric", "n", "reg", "method", "change", "95% CI",
           "p (samples, Holm)", "p (seeds, Holm)", "seeds won"]


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
                          interval(r["ci_low"], r["ci_high"]), p_value(r[P_SAMPLE_HOLM]),
                          p_value(r[P_SEED_HOLM]),
                          f"{r['seeds_won']}/{r['n_seeds']}"])
    return Table("table_realdata", "Real data: each method against reg, per shot", COLUMNS,
                 cells, "Balanced test splits; shots by training count per target bin "
                 "(many > 100, few < 20). Change with a paired bootstrap CI over test samples; "
                 "p-values Holm-adjusted within each experiment (GM in the folder's own "
                 "report.md).")


def draw(results: Results, out: Path) -> list[Path]:
    """``table_realdata.md``."""
    return build(results).write(out)


if __name__ == "__main__":
    run_alone(draw)
