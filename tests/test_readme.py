"""The README's tour runs as written: every cheap command is extracted and run from a copy of
the repository's data (the committed store, the example CSVs); each must exit 0. Long runs
(the paper grid, Ray, the series, the Fashion-MNIST benchmark, reproduce) are listed and
left out here."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LONG = ("--preset paper", "--preset controls", "--preset methods", "--executor ray",
        "realdata series", "--dataset fashion-rotation",
        "reproduce", "figures all", "--dataset hotel_rates", "realdata report runs/hotel")


def tour_commands() -> list[str]:
    """The commands of the README's tour table, in order."""
    text = (ROOT / "README.md").read_text()
    tour = text[text.index("## A short tour"):]
    tour = tour[:tour.index("\n\n", tour.index("| --- |"))]
    return [c for line in tour.splitlines()[3:] for c in re.findall(r"`(clsreg [^`]+)`", line)]


def test_the_tour_lists_commands():
    commands = tour_commands()
    assert len(commands) >= 15 and all(c.startswith("clsreg ") for c in commands)


@pytest.mark.slow
def test_every_cheap_tour_command_exits_0(tmp_path):
    shutil.copytree(ROOT / "results", tmp_path / "results")
    shutil.copytree(ROOT / "docs" / "examples", tmp_path / "docs" / "examples")
    ran = []
    for command in tour_commands():
        if any(marker in command for marker in LONG):
            continue
        args = shlex.split(command)
        result = subprocess.run([sys.executable, "-m", "clsreg", *args[1:]],
                                cwd=tmp_path, capture_output=True, text=True, timeout=600,
                                env={"PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg",
                                     "PATH": "/usr/bin:/bin"})
        assert result.returncode == 0, f"{command}: {result.stderr[-500:]}"
        ran.append(command)
    assert len(ran) >= 10
    assert (tmp_path / "runs" / "figs" / "mse_vs_classes.png").exists()
