"""The grid of a 1D sweep: its schema, presets, validation, and expansion into runs.

A grid (a preset, optionally overridden by a TOML file) names settings, samplings, functions,
seed indices, methods, class counts, binnings, hidden widths and optimizers. It expands into
one run per (setting, sampling, function, seed, hidden, optimizer) for every method without a
class head — such a method does not depend on the class count — and one run per class count
and binning for every method with a head. Nothing here trains: :mod:`simulate.sweep` does.

A :class:`Run` is typed: its :class:`RunSetup` (data, seeds, architecture and the
:class:`~core.recipe.TrainRecipe`: everything a method's run shares with its baseline) and
the method's settings. Its ``config`` is the row
contract of the store (kind ``sim1d``): setting, sampling, function, function_seed, data_seed,
model_seed, model (the method's stored identity: its name, or ``name@hash`` when its
constants are not the legacy ones, see :func:`core.methods.method_identity`), num_classes,
binning, lam, lr, optimizer, weight_decay, hidden, epochs, batch_size, num_points, dtype,
device, protocol, decay_scaling, and ``method_constants`` for a ``name@hash`` method.
A run of a method without a class head has ``num_classes`` 0, ``binning`` "uniform" (binning
does not apply to it) and ``lam`` 0.0, unless the method scales its regression loss by λ
(``lamreg``). A *suite* (:data:`SUITES`) is a list of grids trained into one store: the
controls, which vary the regularization, λ, the binning, the learning rate and the epochs
around one base grid.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from clsreg.analysis.compare import RunIdentity
from clsreg.analysis.errors import ConfigError
from clsreg.analysis.files import check_input_file
from clsreg.analysis.validate import (
    check_choice,
    check_choices,
    check_int,
    check_list,
    check_number,
)
from clsreg.analysis.vocabulary import (
    BINNINGS,
    CLASS_COUNTS,
    DECAY_SCALINGS,
    DEFAULT_METHODS,
    OPTIMIZERS,
    PROTOCOLS,
    SAMPLINGS,
    SETTINGS,
    SIM_KIND,
)
from clsreg.core.methods import (
    METHODS,
    Method,
    get_method,
    method_identity,
    method_record,
    parse_methods,
    registered_method,
    stored_identity,
)
from clsreg.core.recipe import TrainRecipe
from clsreg.simulate.data import DATA_SEEDS, MODEL_SEEDS
from clsreg.simulate.released import min_num_points

# The methods study: the baseline, the study's method, the dedicated fixes, and reg+cls
# combined with each fix that keeps a regression head.
METHOD_STUDY = ("reg", "regcls", "lds", "bmc", "hlgauss", "regcls_lds", "regcls_bmc")
PAPER_LAM = {"clean": 1e2, "noisy": 1e3, "ood": 1e4}
PAPER_LR = {"clean": 1e-3, "noisy": 1e-2, "ood": 1e-4}


@dataclass(frozen=True)
class Grid:
    """What a sweep trains. Seeds are indices (0-4 the study's, up to 99): data seed i pairs
    with model seed i."""

    settings: tuple[str, ...] = SETTINGS
    samplings: tuple[str, ...] = SAMPLINGS
    functions: tuple[int, ...] = tuple(range(10))
    seeds: tuple[int, ...] = tuple(range(5))
    methods: tuple[str, ...] = DEFAULT_METHODS
    num_classes: tuple[int, ...] = CLASS_COUNTS
    binnings: tuple[str, ...] = ("uniform",)
    hidden: tuple[tuple[int, ...], ...] = ((6, 15),)
    optimizers: tuple[str, ...] = ("adam",)
    epochs: int = 80
    batch_size: int = 256
    num_points: int = 60_000
    function_seed: int = 0
    protocol: str = "clsreg"
    weight_decay: float = 1e-3
    decay_scaling: str = "none"
    lam: dict[str, float] = field(default_factory=lambda: dict(PAPER_LAM))
    lr: dict[str, float] = field(default_factory=lambda: dict(PAPER_LR))
    sgd_lr: dict[str, float] = field(default_factory=dict)

    def learning_rate(self, setting: str, optimizer: str) -> float:
        if optimizer == "sgd" and setting in self.sgd_lr:
            return self.sgd_lr[setting]
        return self.lr[setting]


PRESETS: dict[str, dict] = {
    # Seconds: wiring check on one function and seed, small N, a few epochs.
    "smoke": {"settings": ["clean"], "samplings": ["uniform", "severe"], "functions": [0],
              "seeds": [0], "num_classes": [4, 64], "epochs": 3, "num_points": 3000},
    # About a minute on 2 CPU cores: the clean setting at full N and epochs, all four
    # samplings, two class counts, 10 functions × 2 seeds = 20 paired runs per cell.
    "quick": {"settings": ["clean"], "samplings": ["uniform", "mild", "moderate", "severe"],
              "functions": list(range(10)), "seeds": [0, 1], "num_classes": [16, 64]},
    # PROTOCOL §2: 3 settings × 4 samplings × 10 functions × 5 seeds × 5 class counts.
    "paper": {},
    # The paper grid's cells with 20 seeds instead of 5 (GPU: minutes; CPU: clean alone is
    # about 15 minutes): how far a 5-seed cell can move, and how many seeds its change needs.
    "paper-seeds": {"seeds": list(range(20)), "num_classes": [64]},
    # After the paper: hidden widths (both layers) 5 … 65 with Adam and SGD, clean data.
    # Plain SGD feels λ directly (reg+cls steps λ times larger on the MSE term), so its
    # learning rate is kept low; it is not tuned.
    "widths": {"settings": ["clean"], "samplings": ["uniform", "severe"],
               "functions": list(range(10)), "seeds": [0, 1], "num_classes": [64],
               "hidden": [[w, w] for w in (5, 9, 17, 33, 65)], "optimizers": ["adam", "sgd"],
               "sgd_lr": {"clean": 1e-3, "noisy": 1e-3, "ood": 1e-4}},
    # The methods study (docs/methods.md): reg+cls against the dedicated imbalance fixes and
    # their combination, every setting and sampling, 5 functions × 5 seeds, C = 64.
    "methods": {"functions": list(range(5)), "seeds": list(range(5)), "num_classes": [64],
                "methods": list(METHOD_STUDY)},
    # Under 10 minutes on 2 CPU cores: clean uniform and severe, 5 functions × 3 seeds.
    "methods-quick": {"settings": ["clean"], "samplings": ["uniform", "severe"],
                      "functions": list(range(5)), "seeds": [0, 1, 2], "num_classes": [64],
                      "methods": list(METHOD_STUDY)},
    # The study's open questions on the same engine and statistics, clean data:
    # depth vs width at a fixed parameter count (trunk + regression head: 133, 133, 134).
    "depth-width": {"settings": ["clean"], "samplings": ["uniform", "severe"],
                    "functions": list(range(5)), "seeds": list(range(5)), "num_classes": [64],
                    "hidden": [[44], [6, 15], [7, 7, 7]]},
    # the regression loss: L2 vs L1 vs Huber (each against reg = L2; reg+cls for scale);
    "losses": {"settings": ["clean"], "samplings": ["uniform", "severe"],
               "functions": list(range(5)), "seeds": list(range(5)), "num_classes": [64],
               "methods": ["reg", "l1", "huber", "regcls"]},
    # and the optimizer: Adam vs SGD (SGD's learning rate as in "widths", not tuned).
    "optimizers": {"settings": ["clean"], "samplings": ["uniform", "severe"],
                   "functions": list(range(5)), "seeds": list(range(5)), "num_classes": [64],
                   "optimizers": ["adam", "sgd"],
                   "sgd_lr": {"clean": 1e-3, "noisy": 1e-3, "ood": 1e-4}},
}


def _controls(base: dict, class_counts: list[int], lams: tuple[float, ...] = (0.1, 1, 10, 100),
              lr_factors: tuple[float, ...] = (0.3, 3.0), epochs: tuple[int, ...] = (160,)
              ) -> list[tuple[str, dict]]:
    """The controls of docs/fidelity.md around ``base``: is the study's gain the
    classification or the weight decay, and where, with the decay equalized, does the
    classification help?"""
    settings = base.get("settings", list(SETTINGS))
    wd0 = {**base, "weight_decay": 0.0}

    def per_setting(value: float) -> dict:
        return {setting: value for setting in settings}

    variants = [
        # The study: Adam's coupled L2 1e-3 on λ·MSE + CE; λ·MSE alone isolates the loss scale.
        ("study", {**base, "methods": ["reg", "regcls", "lamreg"]}),
        ("no-decay", wd0),
        ("adamw", {**base, "optimizers": ["adamw"]}),
        ("effective-decay", {**base, "decay_scaling": "lambda"}),
        # Plain regression at other decays: the best-regularized baseline is picked among
        # these by validation MSE.
        ("reg-decay-1e-4", {**base, "methods": ["reg"], "weight_decay": 1e-4}),
        ("reg-decay-1e-2", {**base, "methods": ["reg"], "weight_decay": 1e-2}),
    ]
    for lam in lams:
        variants.append((f"search-lam-{lam:g}", {**wd0, "lam": per_setting(lam),
                                                 "num_classes": class_counts,
                                                 "binnings": ["uniform", "equal"]}))
    for factor in lr_factors:
        variants.append((f"search-lr-x{factor:g}", {
            **wd0, "lam": per_setting(1.0),
            "lr": {s: PAPER_LR[s] * factor for s in settings}}))
    for count in epochs:
        variants.append((f"search-epochs-{count}", {**wd0, "lam": per_setting(1.0),
                                                     "epochs": count}))
    return variants


SUITES: dict[str, list[tuple[str, dict]]] = {
    # Under 15 minutes on 2 CPU cores: clean uniform and severe, 5 functions × 5 seeds.
    "controls-quick": _controls({"settings": ["clean"], "samplings": ["uniform", "severe"],
                                 "functions": list(range(5)), "seeds": list(range(5)),
                                 "num_classes": [64]}, class_counts=[64]),
    # The full grid (GPU: minutes): every setting and sampling, 10 functions × 5 seeds.
    "controls": _controls({"num_classes": [64]}, class_counts=[4, 64, 1024]),
}
PRESET_NAMES = tuple(PRESETS) + tuple(SUITES)


# ---------------------------------------------------------------------- parsing and checks
def _per_setting(name: str, value, settings: tuple[str, ...], positive: bool,
                 required: bool = True) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a table of setting = value, got {value!r}")
    for key in value:
        if key not in SETTINGS:
            raise ConfigError(f"unknown setting {key!r} in {name}")
    out = {key: check_number(f"{name}.{key}", v, positive) for key, v in value.items()}
    missing = [s for s in settings if s not in out]
    if required and missing:
        raise ConfigError(f"{name} has no value for setting(s) {', '.join(missing)}")
    return out


def grid_from_mapping(values: dict) -> Grid:
    """A checked :class:`Grid` from plain values; anything wrong is a :class:`ConfigError`."""
    known = {f.name for f in fields(Grid)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown grid key(s): {', '.join(unknown)}; "
                          f"known keys are {', '.join(sorted(known))}")
    merged = {f.name: getattr(Grid(), f.name) for f in fields(Grid)}
    merged.update(values)
    settings = check_choices("settings", merged["settings"], SETTINGS)
    seeds = tuple(check_int("seeds entry", s, 0) for s in check_list("seeds", merged["seeds"]))
    if any(s >= len(DATA_SEEDS) for s in seeds):
        raise ConfigError(f"seed indices must be in 0..{len(DATA_SEEDS) - 1}, got {list(seeds)}")
    num_classes = tuple(check_int("num_classes entry", c) for c in
                        check_list("num_classes", merged["num_classes"]))
    if any(c < 2 for c in num_classes):
        raise ConfigError(f"every class count must be >= 2, got {list(num_classes)}")
    hidden = []
    for widths in check_list("hidden", merged["hidden"]):
        hidden.append(tuple(check_int("hidden width", w, 1)
                            for w in check_list("hidden entry", widths)))
    grid = Grid(
        settings=settings,
        samplings=check_choices("samplings", merged["samplings"], SAMPLINGS),
        functions=tuple(dict.fromkeys(check_int("functions entry", f, 0)
                                      for f in check_list("functions", merged["functions"]))),
        seeds=tuple(dict.fromkeys(seeds)),
        methods=parse_methods(check_choices("methods", merged["methods"], METHODS)),
        num_classes=tuple(dict.fromkeys(num_classes)),
        binnings=check_choices("binnings", merged["binnings"], BINNINGS),
        hidden=tuple(dict.fromkeys(hidden)),
        optimizers=check_choices("optimizers", merged["optimizers"], OPTIMIZERS),
        epochs=check_int("epochs", merged["epochs"], 1),
        batch_size=check_int("batch_size", merged["batch_size"], 1),
        num_points=check_int("num_points", merged["num_points"], 9),
        function_seed=check_int("function_seed", merged["function_seed"], 0),
        protocol=check_choice("protocol", merged["protocol"], PROTOCOLS),
        weight_decay=check_number("weight_decay", merged["weight_decay"]),
        decay_scaling=check_choice("decay_scaling", merged["decay_scaling"], DECAY_SCALINGS),
        lam=_per_setting("lam", merged["lam"], settings, positive=True),
        lr=_per_setting("lr", merged["lr"], settings, positive=True),
        sgd_lr=_per_setting("sgd_lr", merged["sgd_lr"], settings, positive=True,
                            required=False),
    )
    if grid.protocol == "released" and grid.num_points < min_num_points():
        raise ConfigError(f"the released protocol needs num_points >= {min_num_points()}, "
                          f"got {grid.num_points}")
    if grid.num_points // 3 < grid.batch_size:
        raise ConfigError(f"num_points {grid.num_points} gives training sets smaller than one "
                          f"batch of {grid.batch_size}")
    return grid


def load_grids(preset: str | None, config_file: Path | None = None,
               methods: str | None = None, protocol: str | None = None) -> list[Grid]:
    """The grids of a preset or suite (a suite takes no config file or methods)."""
    if preset not in SUITES:
        return [load_grid(preset, config_file, methods, protocol)]
    if config_file is not None or methods is not None:
        raise ConfigError(f"{preset} is a suite of grids; it takes no --config or --methods")
    extra = {} if protocol is None else {"protocol": protocol}
    return [grid_from_mapping({**values, **extra}) for _, values in SUITES[preset]]


def load_grid(preset: str | None, config_file: Path | None = None,
              methods: str | None = None, protocol: str | None = None) -> Grid:
    """The preset's grid with the TOML file's keys, then ``methods`` and ``protocol``, on top
    (paper if no preset)."""
    if preset is None and config_file is None:
        raise ConfigError("give a --preset, a --config file, or both")
    name = preset or "paper"
    if name in SUITES:
        raise ConfigError(f"{name} is a suite of grids, not one grid")
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}")
    values = dict(PRESETS[name])
    if config_file is not None:
        values.update(read_toml(config_file))
    if methods is not None:
        values["methods"] = list(parse_methods(methods))
    if protocol is not None:
        values["protocol"] = protocol
    return grid_from_mapping(values)


def read_toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = check_input_file(path, "config file")
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {path} is not UTF-8 text (TOML files are UTF-8)") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config {path} is not valid TOML: {error}") from None


# ---------------------------------------------------------------------- runs
@dataclass(frozen=True)
class DataSpec:
    """One 1D dataset of the protocol: every run that names the same one shares its arrays."""

    setting: str
    sampling: str
    function: int
    function_seed: int
    data_seed: int
    num_points: int
    protocol: str = "clsreg"


@dataclass(frozen=True)
class RunSetup:
    """What a method's run shares with its baseline's: data, seeds, architecture and the
    training recipe."""

    setting: str
    sampling: str
    function: int
    function_seed: int
    data_seed: int
    model_seed: int
    hidden: tuple[int, ...]
    train: TrainRecipe
    num_points: int
    dtype: str
    device: str
    protocol: str = "clsreg"
    decay_scaling: str = "none"

    @property
    def data(self) -> DataSpec:
        return DataSpec(self.setting, self.sampling, self.function, self.function_seed,
                        self.data_seed, self.num_points, self.protocol)


# The stored row spells the training recipe's fields flat, beside the setup's.
TRAIN_FIELDS = tuple(f.name for f in fields(TrainRecipe))


# Setup entries added after stores were first written: what a row without one means.
RECIPE_DEFAULTS = {f.name: f.default for f in fields(RunSetup) if f.default is not MISSING}


@dataclass(frozen=True)
class Run:
    """One model to train: its recipe and its method's settings. ``method`` is the method's
    stored identity (:func:`core.methods.method_identity`), which the key and row carry."""

    recipe: RunSetup
    method: str
    num_classes: int = 0
    binning: str = "uniform"
    lam: float = 0.0

    @classmethod
    def from_config(cls, config: dict) -> Run:
        """The run a stored row describes (the inverse of :attr:`config`)."""
        values = {f.name: config[f.name] for f in fields(RunSetup)
                  if f.name in config and f.name != "train"}
        values["hidden"] = tuple(values["hidden"])
        train = TrainRecipe(**{name: config[name] for name in TRAIN_FIELDS})
        return cls(RunSetup(**values, train=train), method=stored_identity(config["model"]),
                   num_classes=int(config["num_classes"]), binning=config["binning"],
                   lam=float(config["lam"]))

    @property
    def config(self) -> dict:
        """The row contract (module docstring)."""
        recipe = {}
        for f in fields(RunSetup):  # the recipe's fields where the row has always had them
            value = getattr(self.recipe, f.name)
            recipe.update(asdict(value) if f.name == "train" else {f.name: value})
        recipe["hidden"] = list(self.recipe.hidden)
        method = method_record(registered_method(self.method).name)
        return {**recipe, **method, "num_classes": self.num_classes,
                "binning": self.binning, "lam": self.lam}

    @property
    def key(self) -> str:
        r, t = self.recipe, self.recipe.train
        return (f"{SIM_KIND}/{r.setting}/{r.sampling}/f{r.function}/fs{r.function_seed}"
                f"/d{r.data_seed}/m{r.model_seed}/{self.method}/C{self.num_classes}"
                f"/{self.binning}/lam{self.lam:g}/lr{t.lr:g}/{t.optimizer}"
                f"/wd{t.weight_decay:g}/h{'-'.join(map(str, r.hidden))}/e{t.epochs}"
                f"/b{t.batch_size}/n{r.num_points}/{r.dtype}"
                + ("" if r.protocol == "clsreg" else f"/{r.protocol}")
                + ("" if r.decay_scaling == "none" else f"/wdx{r.decay_scaling}"))

    def method_value(self) -> Method:
        """The registered method with this run's class head settings."""
        return registered_method(self.method).configured(num_classes=self.num_classes,
                                                         binning=self.binning, lam=self.lam)


def sim_identity(record: dict) -> RunIdentity:
    """A stored 1D row's recipe, method and class-head settings: how it pairs."""
    run = Run.from_config(record["config"])
    return RunIdentity(run.recipe, run.method, (run.num_classes, run.binning, run.lam))


@dataclass(frozen=True)
class PopulationKind:
    """What the runs of one population must share: architecture, method, loop."""

    hidden: tuple[int, ...]
    method: str
    num_classes: int
    optimizer: str
    epochs: int
    batch_size: int
    num_points: int

    @classmethod
    def of(cls, run: Run) -> PopulationKind:
        r, t = run.recipe, run.recipe.train
        return cls(r.hidden, run.method, run.num_classes, t.optimizer, t.epochs, t.batch_size,
                   r.num_points)


def expand(grid: Grid, dtype: str = "float32", device: str = "cpu") -> list[Run]:
    """Every run of the grid, in a fixed order (methods in grid order within each group)."""
    runs = []
    identities = {name: method_identity(name) for name in grid.methods}
    for hidden in grid.hidden:
        for optimizer in grid.optimizers:
            for setting in grid.settings:
                for sampling in grid.samplings:
                    for function in grid.functions:
                        for seed in grid.seeds:
                            train = TrainRecipe(
                                optimizer=optimizer, lr=grid.learning_rate(setting, optimizer),
                                weight_decay=grid.weight_decay, epochs=grid.epochs,
                                batch_size=grid.batch_size)
                            recipe = RunSetup(
                                setting=setting, sampling=sampling, function=function,
                                function_seed=grid.function_seed,
                                data_seed=DATA_SEEDS[seed], model_seed=MODEL_SEEDS[seed],
                                hidden=tuple(hidden), train=train, num_points=grid.num_points,
                                dtype=dtype, device=device, protocol=grid.protocol,
                                decay_scaling=grid.decay_scaling)
                            for name in grid.methods:
                                method = get_method(name)
                                identity = identities[name]
                                if method.head is None:
                                    runs.append(Run(recipe, identity, lam=grid.lam[setting]
                                                    if method.loss_scale is not None else 0.0))
                                    continue
                                for num_classes in grid.num_classes:
                                    for binning in grid.binnings:
                                        runs.append(Run(recipe, identity, num_classes, binning,
                                                        grid.lam[setting]))
    return runs


def expand_all(grids: list[Grid], dtype: str = "float32", device: str = "cpu") -> list[Run]:
    """The runs of several grids, each once (a run two grids share is trained once)."""
    runs: dict[str, Run] = {}
    for grid in grids:
        for run in expand(grid, dtype, device):
            runs.setdefault(run.key, run)
    return list(runs.values())


def populations(runs: list[Run], population_size: int) -> list[list[Run]]:
    """Runs grouped by :class:`PopulationKind`, cut into fixed chunks in grid order."""
    groups: dict[PopulationKind, list[Run]] = {}
    for run in runs:
        groups.setdefault(PopulationKind.of(run), []).append(run)
    return [group[i:i + population_size] for group in groups.values()
            for i in range(0, len(group), population_size)]
