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


def main() -> None:
    cli(prog_name="clsreg")


if __name__ == "__main__":
    sys.exit(main())
