"""Installed, the project is one import package: a built wheel holds ``clsreg`` and nothing else
at the top of site-packages, and from it ``import clsreg.simulate`` works while the old generic
names (``analysis``, ``cli``) do not."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True, timeout=300,
                   capture_output=True)
    (wheel,) = out.glob("clsreg-*.whl")
    site = out / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def test_the_wheel_installs_one_top_level_package(unpacked_wheel):
    top = {p.name for p in unpacked_wheel.iterdir()}
    assert {name for name in top if not name.endswith(".dist-info")} == {"clsreg"}
    package = unpacked_wheel / "clsreg"
    for layer in ("analysis", "core", "simulate", "realdata", "paper_figures"):
        assert (package / layer / "__init__.py").is_file(), layer
    assert (package / "cli.py").is_file() and (package / "__main__.py").is_file()
    assert (package / "analysis" / "data" / "gap_calibration.csv").is_file()
    assert list((package / "paper_figures" / "templates").glob("*.j2"))
    assert not (package / "tests").exists() and not (package / "results").exists()
    entry_points = next(unpacked_wheel.glob("*.dist-info")) / "entry_points.txt"
    assert "clsreg = clsreg.cli:main" in entry_points.read_text()


def test_from_the_wheel_clsreg_imports_and_the_generic_names_do_not(unpacked_wheel, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(unpacked_wheel)}
    code = ("import clsreg.simulate, clsreg.realdata, clsreg.cli, importlib.util as u; "
            "print(clsreg.__file__); "
            "print([n for n in ('analysis', 'cli', 'simulate') if u.find_spec(n)])")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120, check=True)
    where, generic = result.stdout.splitlines()
    assert Path(where).is_relative_to(unpacked_wheel)
    assert generic == "[]"
