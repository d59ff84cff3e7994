"""One validation style: small checks that raise one clear :class:`ConfigError` line.

Configs (grids, experiments, training recipes) call these from ``__post_init__`` or while
parsing, so a wrong value is refused before anything runs or is written.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import click
import numpy as np
from clsreg.analysis.errors import ConfigError


def check_int(name: str, value, low: int | None = None) -> int:
    """``value`` as an int (bools refused), at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if low is not None and value < low:
        raise ConfigError(f"{name} must be >= {low}, got {value}")
    return int(value)


def check_number(name: str, value, positive: bool = False) -> float:
    """``value`` as a finite float, >= 0 (or > 0 with ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ConfigError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value}")
    return float(value)


def check_choice(name: str, value, allowed: Iterable[str]) -> str:
    """``value`` if it is one of ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
    return value


def check_list(name: str, value) -> list:
    """A non-empty list (or tuple) as a list."""
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name} must be a list, got {value!r}")
    if not value:
        raise ConfigError(f"{name} is empty: the grid has no runs")
    return list(value)


def check_choices(name: str, value, allowed: Iterable[str]) -> tuple[str, ...]:
    """A non-empty list of distinct entries of ``allowed``, in the given order."""
    allowed = tuple(allowed)
    items = check_list(name, value)
    for item in items:
        if item not in allowed:
            raise ConfigError(f"unknown {name} entry {item!r}; choose from {', '.join(allowed)}")
    return tuple(dict.fromkeys(items))


class FiniteFloatRange(click.FloatRange):
    """A command-line float range that also refuses NaN and infinities (which pass
    ``click.FloatRange``)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


POSITIVE = FiniteFloatRange(min=0, min_open=True)  # a finite number > 0
