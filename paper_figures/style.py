"""Shared figure output: headless matplotlib and atomic PNG + PDF saving."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from clsreg.analysis.files import atomic_path  # noqa: E402

SAMPLING_COLORS = {"uniform": "#4c72b0", "mild": "#55a868", "moderate": "#dd8452",
                   "severe": "#c44e52"}
SPLIT_COLORS = {"train": "#4c72b0", "val": "#55a868", "test": "#c44e52"}


def save_figure(
    figure: plt.Figure, path_without_suffix: Path, formats=("png", "pdf")
) -> list[Path]:
    """Save ``figure`` once per format, each atomically, then close it."""
    written = []
    for fmt in formats:
        target = Path(f"{path_without_suffix}.{fmt}")
        with atomic_path(target) as temporary:
            figure.savefig(temporary, format=fmt, dpi=150, bbox_inches="tight")
        written.append(target)
    plt.close(figure)
    return written
