"""``clsreg theory gap`` on a user's CSV files: the targets from a column, σ (unless given)
from a cross-validated model on the features (:mod:`realdata.cv_sigma`), the report of
:func:`analysis.theory_gap.gap_report`, and the ``realdata run`` command that measures the
change for real."""

from __future__ import annotations

from pathlib import Path

from clsreg.analysis.theory_gap import GapReport, gap_report, read_target_column, robust_range
from clsreg.realdata.cv_sigma import CV_FOLDS, cross_validated_sigma
from clsreg.realdata.datasets import load_csv


def gap_on_files(
    samples_file: Path | None,
    column: str | None,
    features_file: Path | None,
    target: str,
    drop: str | None = None,
    value_range: tuple[float, float] | None = None,
    sigma: float | None = None,
) -> tuple[GapReport, str]:
    """The gap report of the targets, and the command that measures the change.

    The targets are ``column`` (default ``target``) of ``samples_file``, else ``target`` of
    ``features_file``; a features file without a given ``sigma`` sets σ to the RMSE of
    cross-validated gradient boosting on its rows with targets in range.
    """
    value_range = tuple(value_range) if value_range else None
    table = load_csv(features_file, target, drop=drop) if features_file is not None else None
    values = (read_target_column(samples_file, column or target) if samples_file is not None
              else table.target)
    rule = None
    if table is not None and sigma is None:
        sigma = cross_validated_sigma(table, value_range or robust_range(values))
        rule = (f"RMSE of {CV_FOLDS}-fold cross-validated gradient boosting on "
                f"{features_file.name}, targets in range")
    report = gap_report(values, value_range, sigma, sigma_source=rule)
    hint = (f"clsreg realdata run --csv {features_file or samples_file} --target {target}"
            + (f" --drop {drop}" if drop else "") + " --seeds 10 --out runs/measured")
    return report, hint
