"""σ for the theory from a user's features: the residual scale of a quick cross-validated model.

The theory's σ is the predictive scale of a plain regressor on the task (docs/theory.md),
not the spread of the targets. From a table with features we estimate it as the RMSE of
out-of-fold predictions of a gradient-boosted tree model (scikit-learn's
``HistGradientBoostingRegressor``, defaults; 5-fold, shuffled, seed 0): strong on tables,
quick (seconds for 10⁴ rows), and without tuning. Only rows whose target lies in the
theory's range enter the RMSE, so an outlier beyond it cannot inflate σ. Features are
encoded as for training (:func:`realdata.datasets.encode_features`), fitted on all rows: a
mild leak of column means and category levels that does not matter for a scale estimate.
"""

from __future__ import annotations

import numpy as np
from clsreg.analysis.errors import InputError
from clsreg.realdata.datasets import Table, encode_features, fit_encoder

CV_FOLDS = 5
# Rows beyond this are subsampled (seed 0): the σ estimate is stable long before.
MAX_ROWS = 50_000


def cross_validated_sigma(table: Table, value_range: tuple[float, float] | None = None,
                          folds: int = CV_FOLDS, seed: int = 0) -> float:
    """RMSE of ``folds``-fold out-of-fold predictions of ``table.target`` (rows in range)."""
    try:
        from sklearn.ensemble import HistGradientBoostingRegressor
        from sklearn.model_selection import KFold, cross_val_predict
    except ImportError:
        raise InputError("estimating sigma from --features needs scikit-learn: "
                         "pip install 'clsreg[tabular]'") from None
    rows = np.arange(table.num_rows)
    if rows.size > MAX_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_ROWS, replace=False))
    if rows.size < 2 * folds:
        raise InputError(f"{table.name}: {rows.size} rows are too few for {folds}-fold "
                         "cross-validation")
    x = encode_features(table, fit_encoder(table, rows), rows)
    y = table.target[rows]
    if x.shape[1] == 0:
        raise InputError(f"{table.name} has no feature column to predict {table.target_name!r}")
    predicted = cross_val_predict(HistGradientBoostingRegressor(random_state=seed), x, y,
                                  cv=KFold(folds, shuffle=True, random_state=seed))
    keep = np.ones(y.size, bool)
    if value_range is not None:
        keep = (y >= value_range[0]) & (y <= value_range[1])
    return float(np.sqrt(np.mean((predicted[keep] - y[keep]) ** 2)))
