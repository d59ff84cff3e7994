"""The settings a real-data run takes, as the command line offers them (no torch imported).

Every source (:data:`realdata.sources.SOURCES`) takes the training recipe, the class head
and the run settings, and accepts some of the source options below; the command line builds
its ``realdata`` options from :data:`OPTIONS`, leaves every default to the source, and the
library refuses an option the chosen source does not accept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
from clsreg.analysis.validate import POSITIVE, FiniteFloatRange
from clsreg.analysis.vocabulary import BINNINGS

# Settings every source takes: the training recipe, the class head, the regression loss.
RECIPE_KEYS = ("optimizer", "lr", "weight_decay", "epochs", "batch_size")
HEAD_KEYS = ("num_classes", "binning", "lam", "regression")
# Where and how long a run goes: not part of its numbers.
RUN_KEYS = ("seeds", "workers", "threads")


@dataclass(frozen=True)
class Option:
    """One setting as the command line offers it."""

    kind: str  # int, positive (a float > 0), float, choice, text, list, flag, file, folder
    help: str
    minimum: float | None = None
    flag: str | None = None  # the command-line spelling, when not --name-with-dashes
    choices: tuple[str, ...] = ()


# Kinds whose default differs between sources (``clsreg realdata sources`` lists them).
NUMBER_KINDS = ("int", "positive", "float", "choice")

OPTIONS = {
    # every source
    "num_classes": Option("int", "Classes of the class head.", minimum=2),
    "binning": Option("choice", "Uniform-width or equal-frequency (class-balanced) classes.",
                      choices=BINNINGS),
    "lam": Option("positive", "λ in λ·reg + CE (standardized target)."),
    "epochs": Option("int", "Training epochs (best on balanced val).", minimum=1),
    "lr": Option("positive", "Learning rate."),
    "batch_size": Option("int", "Batch size (under torchrun: the global batch).", minimum=1),
    "regression": Option("text", "Regression loss of every method (see: clsreg methods).",
                         flag="loss"),
    "seeds": Option("int", "Seeds 0..N-1, every method trained on each.", minimum=1),
    "workers": Option("int", "Data-loading worker processes.", minimum=0),
    # a source's own
    "csv": Option("file", "Your own CSV table (header row) instead of --dataset."),
    "target": Option("text", "Target column of --csv."),
    "features": Option("list", "Comma-separated feature columns of --csv (default: all "
                               "but the target)."),
    "drop": Option("list", "Comma-separated columns of --csv to ignore."),
    "log_target": Option("flag", "Train on standardized log(target); metrics stay in "
                                 "original units."),
    "data_dir": Option("folder", "Benchmark data folder, laid out as published (nothing "
                                 "downloads; fashion-rotation: default the Debian package's)."),
    "image_size": Option("int", "Input height in pixels.", minimum=8),
    "limit": Option("int", "Take the first N items of each split (Breakfast: N videos per "
                           "activity) — for a quick check.", minimum=1),
    "weights": Option("file", "A local torchvision ResNet-50 state_dict to start from "
                              "(never downloaded)."),
    "splits": Option("list", "Breakfast splits, comma-separated.", flag="split"),
    "angle_tail": Option("float", "Head:tail ratio of the training angles over 10° bins "
                                  "(1 = uniform training angles, the balanced control).",
                         minimum=1.0),
}


def flag_of(name: str) -> str:
    """The command-line spelling of setting ``name``."""
    option = OPTIONS.get(name)
    return "--" + (option.flag if option is not None and option.flag
                   else name.replace("_", "-"))


def click_options(*names: str) -> Callable:
    """The command line's options for the settings ``names`` of :data:`OPTIONS`, as one
    decorator: every default is None (the source's applies), and the library refuses a
    setting the chosen source does not accept."""

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
