"""``clsreg reproduce``: the whole study from a clone, resumable, into one folder and report.

Stages, each resuming what is already done (stores skip stored runs; files that exist are
kept): the theory's predictions and bound grid; the 1D grid under the protocol; the same grid
with weight decay 0 for both arms; the controls suite (no decay, AdamW, equal effective
decay, λ·MSE alone, and the search against the best-regularized reg: the stage that says
whether it is the classification or the weight decay); the theory–simulation check; the
offline real data (hotel_rates and the diamonds imbalance series); every figure and table;
the Markdown and HTML report. The folder is what ``clsreg figures all`` reads::

    DIR/theory/  DIR/sim/  DIR/sim_wd0/  DIR/controls/  DIR/real/hotel_rates/
    DIR/real/diamonds_series/  DIR/figures/  DIR/report.md  DIR/report.html
    DIR/provenance.json
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from clsreg.analysis.files import ensure_dir, write_text_atomic
from clsreg.analysis.validate import check_choice


@dataclass(frozen=True)
class ReproducePreset:
    """How much of the study to run; ``seconds`` are a 2-core CPU's times for the ETA.

    ``grid`` is a sweep preset name or a grid mapping; ``controls`` a suite name or a list
    of (variant, grid mapping); ``real_epochs`` (None: the real-data defaults, 30 for a table
    and 60 for the series) shortens real-data training in tests.
    """

    grid: str | dict
    theory: str
    hotel_seeds: int
    series_seeds: int
    seconds: dict[str, float]
    controls: str | list = "controls-quick"
    real_epochs: int | None = None


PRESETS = {
    "quick": ReproducePreset("quick", "small", 3, 3, {
        "theory": 15, "sim": 100, "control": 100, "controls": 540, "real": 60,
        "figures": 30, "report": 25}),
    "paper": ReproducePreset("paper", "paper", 10, 10, {
        "theory": 120, "sim": 3000, "control": 3000, "controls": 20000, "real": 900,
        "figures": 90, "report": 90}, controls="controls"),
}


@dataclass(frozen=True)
class Stage:
    name: str
    what: str
    run: Callable[[], None]


def _theory(out: Path, preset: ReproducePreset) -> None:
    from clsreg.analysis.theory import bound_grid, write_bound_grid
    from clsreg.simulate.theory_link import PRESETS as THEORY
    from clsreg.simulate.theory_link import predict_protocol, sigma_sensitivity, write_rows

    folder = ensure_dir(out / "theory")
    grid = THEORY[preset.theory]
    if not (folder / "predictions.csv").is_file():
        write_rows(predict_protocol(grid["settings"], grid["samplings"], grid["functions"],
                                    grid["seeds"], grid["class_counts"], grid["binnings"],
                                    workers=2), folder / "predictions.csv")
    if not (folder / "sigma_sensitivity.csv").is_file():
        write_rows(sigma_sensitivity(functions=grid["functions"], workers=2),
                   folder / "sigma_sensitivity.csv")
    if not (folder / "bound_grid.csv").is_file():
        write_bound_grid(bound_grid(), folder / "bound_grid.csv")


def _sweep(folder: Path, preset: ReproducePreset, device: str, weight_decay: float | None
           ) -> None:
    from clsreg.simulate.grid import grid_from_mapping, load_grid
    from clsreg.simulate.report import report
    from clsreg.simulate.sweep import run_sweep

    grid = (load_grid(preset.grid) if isinstance(preset.grid, str)
            else grid_from_mapping(preset.grid))
    if weight_decay is not None:
        grid = replace(grid, weight_decay=weight_decay)
    run_sweep(grid, folder, device=device, show_progress=False)
    report(folder)


def _controls(folder: Path, preset: ReproducePreset, device: str) -> None:
    from clsreg.simulate.controls import controls_report
    from clsreg.simulate.grid import grid_from_mapping, load_grids
    from clsreg.simulate.sweep import run_sweep

    grids = (load_grids(preset.controls) if isinstance(preset.controls, str)
             else [grid_from_mapping(values) for _, values in preset.controls])
    run_sweep(grids, folder, device=device, show_progress=False)
    controls_report(folder)


def _real(out: Path, preset: ReproducePreset, device: str) -> None:
    from clsreg.realdata.imbalance import series
    from clsreg.realdata.sources import make_config, run

    run(make_config("hotel_rates", epochs=preset.real_epochs), out / "real" / "hotel_rates",
        preset.hotel_seeds, device=device, progress=False)
    series(out / "real" / "diamonds_series", seeds=preset.series_seeds, device=device,
           progress=False, epochs=preset.real_epochs)


def stages(out: Path, preset: ReproducePreset, device: str) -> list[Stage]:
    from clsreg.paper_figures.catalog import draw_all
    from clsreg.paper_figures.report import write_report
    from clsreg.paper_figures.results import Results

    name = preset.grid if isinstance(preset.grid, str) else "custom"

    def figures() -> None:
        draw_all(Results.discover(out), ensure_dir(out / "figures"))

    return [
        Stage("theory", f"theory predictions ({preset.theory}) and the bound grid",
              lambda: _theory(out, preset)),
        Stage("sim", f"1D grid '{name}' under the protocol (weight decay 1e-3)",
              lambda: _sweep(out / "sim", preset, device, None)),
        Stage("control", f"1D grid '{name}' with weight decay 0 for both arms",
              lambda: _sweep(out / "sim_wd0", preset, device, 0.0)),
        Stage("controls", f"the controls suite "
                          f"'{preset.controls if isinstance(preset.controls, str) else 'custom'}'"
                          f": is it the classification or the weight decay?",
              lambda: _controls(out / "controls", preset, device)),
        Stage("real", f"hotel_rates ({preset.hotel_seeds} seeds) and the diamonds imbalance "
                      f"series ({preset.series_seeds} seeds)", lambda: _real(out, preset, device)),
        Stage("figures", "every figure and table", figures),
        Stage("report", "report.md and report.html",
              lambda: write_report(Results.discover(out), out)),
    ]


def reproduce(out: str | Path, preset_name: str = "quick", device: str = "auto",
              show_progress: bool = True, preset: ReproducePreset | None = None) -> dict:
    """Run (or resume) every stage into ``out``; return and store the provenance.

    ``preset`` (a custom :class:`ReproducePreset`) overrides ``preset_name``.
    """
    from clsreg.analysis.store import git_revision, package_version
    from clsreg.core.device import resolve_device
    from tqdm import tqdm

    if preset is None:
        preset = PRESETS[check_choice("reproduce preset", preset_name, PRESETS)]
    else:
        preset_name = "custom"
    resolved = resolve_device(device)
    out = ensure_dir(out)
    plan = stages(out, preset, device)
    total = sum(preset.seconds[s.name] for s in plan)
    seconds: dict[str, float] = {}
    with tqdm(total=total, unit="s", disable=not show_progress, dynamic_ncols=True,
              bar_format="{desc} |{bar}| est. {n:.0f}/{total:.0f} s of work "
                         "[{elapsed}<{remaining}]") as bar:
        for index, stage in enumerate(plan, 1):
            estimate = preset.seconds[stage.name]
            bar.set_description(f"[{index}/{len(plan)}] {stage.name}")
            bar.write(f"[{index}/{len(plan)}] {stage.name}: {stage.what} "
                      f"(about {_duration(estimate)} on a 2-core CPU when nothing is stored)")
            start = time.perf_counter()
            if stage.name == "report":
                _write_provenance(out, preset_name, preset, str(resolved), seconds,
                                  package_version(), git_revision())
            stage.run()
            seconds[stage.name] = round(time.perf_counter() - start, 1)
            bar.update(estimate)
    return _write_provenance(out, preset_name, preset, str(resolved), seconds,
                             package_version(), git_revision())


def done_line(provenance: dict, out: str | Path) -> str:
    """What ``clsreg reproduce`` prints at the end: the stages' wall time and the report."""
    return (f"done in {sum(provenance['wall_seconds'].values()):.0f} s -> "
            f"{Path(out) / 'report.html'} (and report.md)")


def _write_provenance(out: Path, preset_name: str, preset: ReproducePreset, device: str,
                      seconds: dict[str, float], version: str, revision: str) -> dict:
    import numpy
    import torch
    from clsreg.simulate.data import DATA_SEEDS, MODEL_SEEDS
    from clsreg.simulate.grid import grid_from_mapping, load_grid

    grid = (load_grid(preset.grid) if isinstance(preset.grid, str)
            else grid_from_mapping(preset.grid))
    seeds = {"1D (data seed, model seed) pairs": [(DATA_SEEDS[i], MODEL_SEEDS[i])
                                                 for i in grid.seeds],
             "real-data seeds": f"0..{max(preset.hotel_seeds, preset.series_seeds) - 1}"}
    provenance = {"preset": preset_name, "preset_settings": asdict(preset), "seeds": seeds,
                  "device": device,
                  "clsreg": version, "git_revision": revision, "python": platform.python_version(),
                  "torch": torch.__version__, "numpy": numpy.__version__,
                  "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
                  "wall_seconds": seconds,
                  "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    write_text_atomic(out / "provenance.json", json.dumps(provenance, indent=2) + "\n")
    return provenance


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
