"""Theory against simulation: the rank correlation of predicted excess MSE with the measured
baseline − method test MSE, per setting and over the label-shift settings pooled."""

from __future__ import annotations

from pathlib import Path

from paper_figures.results import Results, run_alone
from paper_figures.table import Table, p_value

COLUMNS = ["cells", "n cells", "n pairs", "Spearman ρ", "95% CI", "p", "theory applies"]


def build(results: Results) -> Table:
    from simulate.theory_check import check_cells, join_cells, measured_pairs
    from simulate.theory_link import predictions_for_pairs

    pairs = measured_pairs(results.need_sim())
    rows = check_cells(join_cells(pairs, predictions_for_pairs(pairs)))
    return Table("table_theory_check", "Theory against simulation",
                 COLUMNS, [[r.group, str(r.num_cells), str(r.num_pairs), f"{r.spearman:.3f}",
                            f"[{r.ci_low:.3f}, {r.ci_high:.3f}]", p_value(r.p_value),
                            "yes" if r.theory_applies else "no (OOD breaks label shift)"]
                           for r in rows],
                 "Per cell (dataset, class setup): predicted excess balanced MSE of the best "
                 "plain regressor against the measured MSE(reg) − MSE(reg+cls), Spearman with "
                 "a bootstrap CI.")


def draw(results: Results, out: Path) -> list[Path]:
    """``table_theory_check.md``."""
    return build(results).write(out)


if __name__ == "__main__":
    run_alone(draw)
