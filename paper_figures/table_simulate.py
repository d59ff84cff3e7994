"""The 1D table: each method against reg per setting, sampling and class count — test MSE of
both, relative change with its seed-level 95% CI, Holm-adjusted p, TOST and verdict — for
the protocol's store and, beside it, the weight-decay-0 control when the folder has one."""

from __future__ import annotations

from pathlib import Path

from clsreg.paper_figures.results import Results, run_alone
from clsreg.paper_figures.table import Table, interval, number, p_value, percent

COLUMNS = ["setting", "sampling", "C", "seeds", "reg", "method", "change", "95% CI (seeds)",
           "p (seeds, Holm)", "TOST p (Holm)", "verdict", "95% CI (pairs)", "p (pairs, Holm)"]


def _rows(folder: Path, num_resamples: int) -> list[dict]:
    from clsreg.simulate.report import load_records, paired_cells, summarize

    return summarize(paired_cells(load_records(folder)), num_resamples)


def _table(name: str, title: str, rows: list[dict], note: str) -> Table:
    cells = []
    for r in rows:
        method_mse = next(v for k, v in r.items() if k.startswith("mse_") and k != "mse_reg")
        cells.append([r["setting"], r["sampling"] + (f" ({r['method']})" if "method" in r
                                                       else ""),
                      str(r["num_classes"]), str(r["n_seeds"]), number(r["mse_reg"]),
                      number(method_mse), percent(r["rel_change"]),
                      interval(r["ci_low"], r["ci_high"]), p_value(r["p_seed_holm"]),
                      p_value(r["p_equiv_holm"]), r["verdict"],
                      interval(r["pair_ci_low"], r["pair_ci_high"]),
                      p_value(r["p_pair_holm"])])
    return Table(name, title, COLUMNS, cells, note + SEED_NOTE)


SEED_NOTE = (" Unit: the seed (each seed's data draw and initialization is reused by every "
             "function and class count, so pairs within a seed are not independent): the CI "
             "is Fieller's over per-seed mean MSEs, p the paired t-test over seeds, TOST the "
             "equivalence test within ±5%, all Holm-adjusted over the table's cells (one "
             "question); the verdict uses the adjusted p. The per-pair columns are secondary.")


def summary_rows(results: Results, num_resamples: int = 10_000
                 ) -> tuple[list[dict], list[dict] | None]:
    """The paired summary rows of the protocol's store and of the control's (None if absent)."""
    protocol = _rows(results.need_sim(), num_resamples)
    control = _rows(results.control, num_resamples) if results.control is not None else None
    return protocol, control


def tables(protocol: list[dict], control: list[dict] | None) -> list[Table]:
    """The protocol's table and, given its rows, the control's."""
    out = [_table("table_simulate", "1D study: reg+cls against reg (the protocol)", protocol,
                     "Change = mean MSE(method) / mean MSE(reg) − 1 over paired runs (same "
                     "data, seeds, batches); negative means the method helps. Weight decay "
                     "1e-3 (Adam's coupled L2) for both arms, as in the study.")]
    if control is not None:
        out.append(_table(
            "table_simulate_wd0", "Control: the same grid with weight decay 0 for both arms",
            control,
            "The protocol's weight decay acts on λ·MSE + CE, whose gradients are λ times "
            "larger than plain MSE's, so there reg+cls is λ× less regularized than reg; here "
            "neither arm is regularized."))
    return out


def build(results: Results, num_resamples: int = 10_000) -> list[Table]:
    return tables(*summary_rows(results, num_resamples))


def draw(results: Results, out: Path) -> list[Path]:
    """``table_simulate.md`` (and ``table_simulate_wd0.md`` with the control)."""
    return [path for table in build(results) for path in table.write(out)]


if __name__ == "__main__":
    run_alone(draw)
