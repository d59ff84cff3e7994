"""The calibration of the theory's predicted change against measured changes.

Every calibration point is one benchmark configuration with a theory prediction
(``predicted_change``, :func:`analysis.theory_gap.predicted_change`) and a measured relative
change of balanced MSE with its 95% CI and seed-level p-value. The points are stored in
``analysis/data/gap_calibration.csv`` (rebuilt by ``docs/theory/build_calibration.py``, which
trains them through :mod:`realdata.calibration`). This module holds what is done with them:

* :class:`Calibration`, the least-squares line ``measured ≈ intercept + slope · predicted``
  with its prediction interval and the three-way verdict of ``clsreg theory gap``, given
  only while the line has predictive power on held-out tables (:class:`PredictivePower`,
  leave-one-table-out; otherwise the verdict is None and the reason says why);
* :func:`finish`: the outcome of every point (a significant help, a significant hurt or
  neither: seed-level paired t-test, Holm-adjusted within each role);
* :func:`evaluate`: the fits of :data:`FITS`, every point's calibrated interval and verdict,
  and how the verdicts score against the outcomes; :func:`format_calibration_report`
  writes them as Markdown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from clsreg.analysis.errors import InputError
from clsreg.analysis.files import atomic_path, ensure_dir, read_csv_file

if TYPE_CHECKING:  # pandas loads lazily: `theory gap` starts without it
    import pandas as pd

CALIBRATION_FILE = Path(__file__).parent / "data" / "gap_calibration.csv"
# The stored points' columns, in file order.
POINT_COLUMNS = ("role", "source", "name", "n_train", "imbalance_ratio", "empty_bin_share",
                 "sigma", "excess_mse", "relative_excess", "captured_fraction", "num_classes",
                 "predicted_change", "measured_change", "ci_low", "ci_high", "p_seed",
                 "p_seed_holm", "n_seeds", "outcome")
# What a fit reads of them.
CALIBRATION_COLUMNS = ("source", "name", "predicted_change", "measured_change", "ci_low",
                       "ci_high", "p_seed", "n_seeds")
# The verdict is for real tables: it is fitted to the real calibration points (tables and the
# diamonds imbalance series). The 1D points are in the same file and fitted apart: their
# gains come from the 1D recipe's regularization asymmetry and do not transfer
# (docs/theory.md, "Calibration and validation").
VERDICT_SOURCES = ("table", "series")
# The calibrated interval's level (a prediction interval for one new table).
INTERVAL_LEVEL = 0.9
VERDICTS = ("likely to help", "unlikely to matter", "uncertain")
# What a report shows where the calibration has no predictive power (the tool prints null).
NO_VERDICT = "no verdict"
# A point's outcome is significant when its Holm-adjusted seed-level p is below this.
ALPHA = 0.05


def table_of(row: dict, index: int) -> str:
    """The table a point belongs to: the steps of an imbalance series share their dataset
    (``diamonds/mild`` → ``diamonds``) and are held out together; a point without a name is
    its own table."""
    name = row.get("name")
    if not isinstance(name, str):
        return f"#{index}"
    return name.split("/")[0] if row.get("source") == "series" else name


@dataclass(frozen=True)
class PredictivePower:
    """Does the calibration line predict tables it was not fitted to?

    Leave-one-table-out: every table (all steps of a series together) is predicted by the
    line fitted to the other tables. ``loto_r2 = 1 − Σ(measured − held-out prediction)² /
    Σ(measured − mean)²`` (≤ 0: no better than predicting the mean change for every table);
    ``spearman`` ranks the held-out predictions against the measurements, its 95% CI drawing
    whole tables (:func:`analysis.stats.cluster_rank_correlation_ci`). The rule: the line has
    power when the full fit's slope 95% CI lies above 0 *and* ``loto_r2 > 0``; otherwise
    ``theory gap`` gives no verdict.
    """

    num_tables: int
    loto_r2: float
    spearman: float
    spearman_low: float
    spearman_high: float
    slope: float
    slope_low: float
    slope_high: float

    @property
    def has_power(self) -> bool:
        return bool(self.slope_low > 0 and self.loto_r2 > 0)

    def describe(self) -> str:
        """The numbers behind the rule, in one parenthesis-free clause."""
        return (f"leave-one-table-out R² {self.loto_r2:.2f}, Spearman {self.spearman:.2f} "
                f"[{self.spearman_low:.2f}, {self.spearman_high:.2f}] over {self.num_tables} "
                f"held-out tables; slope {self.slope:.2f} [{self.slope_low:.2f}, "
                f"{self.slope_high:.2f}]")


def predictive_power(rows: list[dict], slope: tuple[float, float, float]) -> PredictivePower:
    """:class:`PredictivePower` of the line fitted to ``rows`` (``slope``: its slope and
    95% CI), by refitting without each table in turn (no retraining: the points only)."""
    from clsreg.analysis.stats import cluster_rank_correlation_ci

    tables = np.array([table_of(r, i) for i, r in enumerate(rows)])
    x = np.array([float(r["predicted_change"]) for r in rows])
    y = np.array([float(r["measured_change"]) for r in rows])
    held_out = np.full(x.size, math.nan)
    for table in np.unique(tables):
        out = tables == table
        rest = [r for r, o in zip(rows, out, strict=True) if not o]
        if len(rest) >= 4 and np.ptp(x[~out]) > 0:
            fit = Calibration.fit(rest, loto=False)
            held_out[out] = fit.intercept + fit.slope * x[out]
    ok = np.isfinite(held_out)
    total = float(np.sum((y[ok] - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((y[ok] - held_out[ok]) ** 2)) / total if total > 0 else math.nan
    rho = cluster_rank_correlation_ci(held_out[ok], y[ok], tables[ok], num_resamples=2000)
    return PredictivePower(num_tables=int(np.unique(tables[ok]).size), loto_r2=r2,
                           spearman=rho.estimate, spearman_low=rho.low,
                           spearman_high=rho.high, slope=slope[0], slope_low=slope[1],
                           slope_high=slope[2])


@dataclass(frozen=True)
class Calibration:
    """Measured relative change against the predicted one over the calibration set.

    ``measured ≈ intercept + slope · predicted`` (least squares, every point one benchmark
    configuration, equal weight); a new prediction gets the ordinary-least-squares
    prediction interval at :data:`INTERVAL_LEVEL`. ``detectable`` is the median half-width
    of the calibration points' measured 95% CIs: the smallest change their runs resolve,
    below which a change does not matter for the verdict.
    """

    intercept: float
    slope: float
    slope_low: float
    slope_high: float
    residual_sd: float
    num_points: int
    predicted_mean: float
    predicted_ss: float
    detectable: float
    r_squared: float
    power: PredictivePower | None = None

    @classmethod
    def fit(cls, rows: list[dict], loto: bool = True) -> Calibration:
        """The line through ``rows``, and (``loto``) its :class:`PredictivePower`."""
        from scipy import stats

        x = np.array([float(r["predicted_change"]) for r in rows])
        y = np.array([float(r["measured_change"]) for r in rows])
        half = np.array([(float(r["ci_high"]) - float(r["ci_low"])) / 2 for r in rows])
        if x.size < 4 or np.ptp(x) == 0:
            raise InputError(f"a calibration needs at least 4 points with different "
                             f"predictions, got {x.size}")
        fit = stats.linregress(x, y)
        residual = y - (fit.intercept + fit.slope * x)
        sd = float(np.sqrt(np.sum(residual ** 2) / (x.size - 2)))
        t = stats.t.ppf(0.975, x.size - 2)
        slope = (float(fit.slope), float(fit.slope - t * fit.stderr),
                 float(fit.slope + t * fit.stderr))
        return cls(intercept=float(fit.intercept), slope=slope[0], slope_low=slope[1],
                   slope_high=slope[2], residual_sd=sd,
                   num_points=int(x.size), predicted_mean=float(x.mean()),
                   predicted_ss=float(np.sum((x - x.mean()) ** 2)),
                   detectable=float(np.median(half[np.isfinite(half)])),
                   r_squared=float(fit.rvalue ** 2),
                   power=predictive_power(list(rows), slope) if loto else None)

    def interval(self, predicted: float) -> tuple[float, float, float]:
        """The calibrated change for ``predicted``, and its prediction interval."""
        from scipy import stats

        center = self.intercept + self.slope * predicted
        spread = self.residual_sd * math.sqrt(
            1.0 + 1.0 / self.num_points
            + (predicted - self.predicted_mean) ** 2 / self.predicted_ss)
        t = stats.t.ppf(0.5 + INTERVAL_LEVEL / 2, self.num_points - 2)
        return center, center - t * spread, center + t * spread

    def verdict(self, predicted: float) -> tuple[str | None, str]:
        """(verdict, why): None while the line has no predictive power on held-out tables
        (:class:`PredictivePower`); else helps if the whole interval is below 0, does not
        matter if it lies within ± the detectable change, uncertain otherwise."""
        if self.power is not None and not self.power.has_power:
            return None, ("no verdict: the calibration has no predictive power on held-out "
                          f"tables ({self.power.describe()}; a verdict needs the slope's CI "
                          "above 0 and R² > 0)")
        center, low, high = self.interval(predicted)
        span = (f"calibrated change {100 * center:+.1f}% "
                f"[{100 * low:+.1f}, {100 * high:+.1f}] ({100 * INTERVAL_LEVEL:.0f}% "
                f"prediction interval)")
        if high < 0:
            return VERDICTS[0], span + " is below 0"
        if -self.detectable <= low and high <= self.detectable:
            return VERDICTS[1], (span + f" lies within ±{100 * self.detectable:.1f}%, the "
                                 "smallest change the calibration runs resolve")
        return VERDICTS[2], span + " spans both a gain and no gain"


def load_calibration(path: Path = CALIBRATION_FILE,
                     sources: tuple[str, ...] = VERDICT_SOURCES) -> Calibration:
    """The calibration fitted to the stored calibration points of ``sources``."""
    table = read_csv_file(path, "calibration file")
    missing = {"role", *CALIBRATION_COLUMNS} - set(table.columns)
    if missing:
        raise InputError(f"{path} lacks columns {', '.join(sorted(missing))}")
    chosen = table[(table["role"] == "calibration") & table["source"].isin(sources)]
    return Calibration.fit(chosen.to_dict("records"))


def outcome(row: dict) -> str:
    """help / hurt / none: the sign of a change whose Holm-adjusted seed-level p < 0.05."""
    if not row["p_seed_holm"] < ALPHA:
        return "none"
    return "help" if row["measured_change"] < 0 else "hurt"


def finish(points: list[dict]) -> pd.DataFrame:
    """The points as a DataFrame with Holm within each role and the outcome of every point."""
    import pandas as pd
    from clsreg.analysis.stats import holm

    frame = pd.DataFrame(points)
    frame["p_seed_holm"] = np.nan
    for role in frame["role"].unique():
        index = frame["role"] == role
        frame.loc[index, "p_seed_holm"] = holm(frame.loc[index, "p_seed"].to_numpy())
    frame["outcome"] = [outcome(r) for r in frame.to_dict("records")]
    return frame


def write_points(frame: pd.DataFrame, path: Path = CALIBRATION_FILE) -> Path:
    """The finished points (:func:`finish`) as the calibration file, atomically."""
    ensure_dir(Path(path).resolve().parent)
    with atomic_path(path) as temporary:
        frame[list(POINT_COLUMNS)].to_csv(temporary, index=False, float_format="%.6g")
    return Path(path)


FITS = {"real (theory gap's verdict)": VERDICT_SOURCES, "1d": ("1d",),
        "pooled (1d + real)": ("1d", *VERDICT_SOURCES)}


def evaluate(frame: pd.DataFrame) -> tuple[dict[str, Calibration], pd.DataFrame, dict]:
    """Fit each of :data:`FITS` on its calibration points; give every point the calibrated
    interval and verdict of the real fit (``theory gap``'s), and of the pooled fit for
    comparison; score both on each role's real points: precision and recall of "likely to
    help" for a significant help, and how often "unlikely to matter" had no significant
    change."""
    calibration = frame[frame["role"] == "calibration"]
    fits = {name: Calibration.fit(calibration[calibration["source"].isin(sources)]
                                  .to_dict("records")) for name, sources in FITS.items()
            if calibration["source"].isin(sources).sum() >= 4
            and not (name.startswith("pooled") and not (calibration["source"] == "1d").any())}
    scored = frame.copy()
    scores = {}
    for label, fit in (("real", fits["real (theory gap's verdict)"]),
                       ("pooled", fits.get("pooled (1d + real)"))):
        if fit is None:
            continue
        intervals = [fit.interval(p) for p in scored["predicted_change"]]
        scored[f"calibrated_{label}"] = [i[0] for i in intervals]
        scored[f"low_{label}"] = [i[1] for i in intervals]
        scored[f"high_{label}"] = [i[2] for i in intervals]
        scored[f"verdict_{label}"] = [fit.verdict(p)[0] or NO_VERDICT
                                      for p in scored["predicted_change"]]
        for role in ("calibration", "validation"):
            part = scored[(scored["role"] == role) & scored["source"].isin(VERDICT_SOURCES)]
            scores[f"{role} tables, {label} fit"] = verdict_scores(part, f"verdict_{label}")
    return fits, scored, scores


def verdict_scores(part: pd.DataFrame, column: str) -> dict:
    """How a verdict column agrees with the measured outcomes of ``part`` ."""
    says_help = part[column] == VERDICTS[0]
    says_null = part[column] == VERDICTS[1]
    helped = part["outcome"] == "help"
    return {
        "points": int(len(part)), "helped": int(helped.sum()),
        "hurt": int((part["outcome"] == "hurt").sum()),
        "says_help": int(says_help.sum()), "says_null": int(says_null.sum()),
        "says_uncertain": int((part[column] == VERDICTS[2]).sum()),
        "says_nothing": int((part[column] == NO_VERDICT).sum()),
        "precision_help": (float((says_help & helped).sum() / says_help.sum())
                           if says_help.any() else math.nan),
        "recall_help": (float((says_help & helped).sum() / helped.sum())
                        if helped.any() else math.nan),
        "null_correct": (float((says_null & (part["outcome"] == "none")).sum()
                               / says_null.sum()) if says_null.any() else math.nan),
        "spearman": (float(part[["predicted_change", "measured_change"]]
                           .corr(method="spearman").iloc[0, 1]) if len(part) > 2
                     else math.nan),
    }


def _pct(value: float) -> str:
    return f"{100 * value:+.1f}%" if math.isfinite(value) else "—"


def format_calibration_report(fits: dict[str, Calibration], scored: pd.DataFrame,
                              scores: dict) -> str:
    """:func:`evaluate`'s fits, every point with both verdicts, and the scores, as Markdown."""
    lines = ["# Calibration and validation of `clsreg theory gap` (generated by "
             "build_calibration.py)", "", "## Fits: measured change ≈ intercept + slope × "
             "predicted change", "",
             "| fit | points | slope [95% CI] | intercept | residual sd | R² | detectable | "
             "held-out tables | LOTO R² | LOTO Spearman [95% CI] | predictive power |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, fit in fits.items():
        power = fit.power
        lines.append(f"| {name} | {fit.num_points} | {fit.slope:.2f} [{fit.slope_low:.2f}, "
                     f"{fit.slope_high:.2f}] | {_pct(fit.intercept)} | "
                     f"{100 * fit.residual_sd:.1f}% | {fit.r_squared:.2f} | "
                     f"±{100 * fit.detectable:.1f}% | {power.num_tables} | "
                     f"{power.loto_r2:.2f} | {power.spearman:.2f} [{power.spearman_low:.2f}, "
                     f"{power.spearman_high:.2f}] | {'yes' if power.has_power else 'no'} |")
    lines += ["", "LOTO: leave-one-table-out (each table, a series' steps together, predicted "
              "by the line fitted to the others; R² = 1 − Σ(measured − held-out prediction)² "
              "/ Σ(measured − mean)²; Spearman's CI draws whole tables). Predictive power = "
              "the slope's 95% CI above 0 and LOTO R² > 0; without it `theory gap` gives no "
              "verdict (\"no verdict\" below) and points to measuring."]
    lines += ["", "## Points", "",
              "| role | point | imbalance | predicted | calibrated (real fit) [90% PI] | "
              "verdict (real fit) | verdict (pooled fit) | measured [95% CI] | "
              "p seeds (Holm) | outcome |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in scored.to_dict("records"):
        ratio = f"{r['imbalance_ratio']:.0f}" if math.isfinite(r["imbalance_ratio"]) else "—"
        lines.append(
            f"| {r['role']} | {r['name']} | {ratio} | {_pct(r['predicted_change'])} | "
            f"{_pct(r['calibrated_real'])} [{_pct(r['low_real'])}, {_pct(r['high_real'])}] | "
            f"{r['verdict_real']} | {r.get('verdict_pooled', '—')} | "
            f"{_pct(r['measured_change'])} "
            f"[{_pct(r['ci_low'])}, {_pct(r['ci_high'])}] | {r['p_seed_holm']:.2g} | "
            f"{r['outcome']} |")
    lines += ["", "## Scores (real points only)", "",
              "| set, fit | points | helped | hurt | says help | says no matter | "
              "says uncertain | no verdict | precision (help) | recall (help) | "
              "Spearman (pred, meas) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in scores.items():
        lines.append(f"| {name} | {s['points']} | {s['helped']} | {s['hurt']} | "
                     f"{s['says_help']} | {s['says_null']} | {s['says_uncertain']} | "
                     f"{s['says_nothing']} | "
                     f"{s['precision_help']:.2f} | {s['recall_help']:.2f} | "
                     f"{s['spearman']:.2f} |")
    return "\n".join(lines) + "\n"
