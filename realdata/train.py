"""The training loop shared by every real benchmark: one model, given batches, best-on-val.

Reg and reg+cls are trained by two calls of :func:`train_model` with the same
``batch_orders`` (one permutation of the training rows per epoch, drawn once from the
seed), so they see identical batches in identical order. After every epoch the model is
scored on the balanced validation split in the target's original units and the best
epoch's weights are kept (model selection never looks at the test split).

Targets are trained on a standardized scale (optionally of ``log y``) so that the default
learning rate and λ suit any unit; predictions are mapped back to the original units for
every metric.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from analysis.errors import InputError
from simulate.loss import REGRESSION_LOSSES, reg_cls_loss

from .models import RegClsModel


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer and loss settings (defaults: see docs/realdata.md for why)."""

    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lam: float = 10.0
    regression: str = "mse"

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError("epochs and batch size must be >= 1")
        if not self.lr > 0 or self.weight_decay < 0 or not self.lam > 0:
            raise InputError("need lr > 0, weight decay >= 0 and lambda > 0")
        if self.regression not in REGRESSION_LOSSES:
            raise InputError(f"unknown regression loss {self.regression!r}; "
                             f"choose one of {', '.join(REGRESSION_LOSSES)}")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TargetScaler:
    """``z = (t(y) - mean) / std`` with ``t`` the identity or ``log`` (needs y > 0)."""

    log: bool
    mean: float
    std: float

    @classmethod
    def fit(cls, y: np.ndarray, log: bool) -> TargetScaler:
        y = np.asarray(y, dtype=np.float64)
        if log and np.any(y <= 0):
            raise InputError("a log target needs every target value to be > 0")
        t = np.log(y) if log else y
        std = float(t.std())
        return cls(log=log, mean=float(t.mean()), std=std if std > 0 else 1.0)

    def transform(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        return ((np.log(y) if self.log else y) - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        t = np.asarray(z, dtype=np.float64) * self.std + self.mean
        return np.exp(t) if self.log else t


@dataclass(frozen=True)
class TrainData:
    """Tensors of one run: training inputs, scaled targets, class labels, and validation."""

    x_train: torch.Tensor
    z_train: torch.Tensor
    labels: torch.Tensor
    x_val: torch.Tensor
    y_val: np.ndarray
    scaler: TargetScaler


def batch_orders(num_rows: int, epochs: int, seed: int) -> list[np.ndarray]:
    """One permutation of ``range(num_rows)`` per epoch, drawn from ``seed`` alone."""
    rng = np.random.default_rng([int(seed), 0xBA7C])
    return [rng.permutation(num_rows) for _ in range(epochs)]


@torch.no_grad()
def predict(model: RegClsModel, x: torch.Tensor, scaler: TargetScaler,
            batch_size: int = 8192) -> np.ndarray:
    """Regression-head predictions in the target's original units."""
    model.eval()
    chunks = [model(x[i:i + batch_size])[0].double().cpu().numpy()
              for i in range(0, x.shape[0], batch_size)]
    return scaler.inverse(np.concatenate(chunks) if chunks else np.zeros(0))


def _val_score(prediction: np.ndarray, target: np.ndarray, regression: str) -> float:
    error = prediction - target
    return float(np.mean(np.abs(error)) if regression == "l1" else np.mean(np.square(error)))


def train_model(
    model: RegClsModel,
    data: TrainData,
    config: TrainConfig,
    orders: list[np.ndarray],
    on_epoch: Callable[[], None] | None = None,
) -> dict:
    """Train ``model`` in place on ``orders``' batches; load and report its best val epoch.

    The loss is plain MSE (or L1) when the model has no class head and
    ``λ·reg + CE`` when it has one (:func:`simulate.loss.reg_cls_loss`).
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    has_classes = model.heads.classification is not None
    best = {"val_score": float("inf"), "epoch": -1, "state": None}
    train_loss = float("nan")
    for epoch, order in enumerate(orders):
        model.train()
        total, batches = 0.0, 0
        order_t = torch.as_tensor(order, device=data.x_train.device)
        for start in range(0, order.size, config.batch_size):
            rows = order_t[start:start + config.batch_size]
            prediction, logits = model(data.x_train[rows])
            loss = reg_cls_loss(prediction, data.z_train[rows],
                                logits if has_classes else None,
                                data.labels[rows] if has_classes else None,
                                config.lam, config.regression)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            batches += 1
        train_loss = total / max(batches, 1)
        if not np.isfinite(train_loss):
            raise InputError(f"training diverged at epoch {epoch} (loss {train_loss}); "
                             "lower the learning rate or lambda")
        score = _val_score(predict(model, data.x_val, data.scaler), data.y_val,
                           config.regression)
        if score < best["val_score"]:
            best = {"val_score": score, "epoch": epoch,
                    "state": copy.deepcopy(model.state_dict())}
        if on_epoch is not None:
            on_epoch()
    if best["state"] is None:
        raise InputError("training produced no finite validation score; "
                         "lower the learning rate or lambda")
    model.load_state_dict(best["state"])
    return {"best_epoch": best["epoch"], "val_score": best["val_score"],
            "last_train_loss": train_loss}
