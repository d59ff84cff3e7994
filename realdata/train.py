"""The training loop shared by every real benchmark: one model, given batches, best-on-val.

Every method of an experiment is trained by one call of :func:`train_model` with the same
``batch_orders`` (one permutation of the training rows per epoch, drawn once from the
seed), so the methods see identical batches in identical order. The loss is the method's
objective (:mod:`core.methods`), and so is the validation score: the method's own
regression loss on the balanced validation split. After every epoch the model is
scored on the balanced validation split in the target's original units and the best
epoch's weights are kept (model selection never looks at the test split).

Targets are trained on a standardized scale (optionally of ``log y``) so that the default
learning rate and λ suit any unit; predictions are mapped back to the original units for
every metric.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from clsreg.analysis.errors import RunError
from clsreg.core.loop import TargetScaler
from clsreg.core.methods import Method
from clsreg.core.recipe import TrainRecipe, make_optimizer

from .models import RegClsModel


@dataclass(frozen=True)
class TrainData:
    """Tensors of one run: training inputs, scaled targets, class labels (None without a
    class head), per-sample weights (None without a weighting) and validation."""

    x_train: torch.Tensor
    z_train: torch.Tensor
    labels: torch.Tensor | None
    x_val: torch.Tensor
    y_val: np.ndarray
    scaler: TargetScaler
    weights: torch.Tensor | None = None
    # Class-bin centres on the scaled target, for a method that predicts from classes.
    centres: torch.Tensor | None = None


def batch_orders(num_rows: int, epochs: int, seed: int) -> list[np.ndarray]:
    """One permutation of ``range(num_rows)`` per epoch, drawn from ``seed`` alone."""
    rng = np.random.default_rng([int(seed), 0xBA7C])
    return [rng.permutation(num_rows) for _ in range(epochs)]


@torch.no_grad()
def predict(model: RegClsModel, x: torch.Tensor, scaler: TargetScaler,
            centres: torch.Tensor | None = None, batch_size: int = 8192) -> np.ndarray:
    """Predictions in the target's original units: the regression head's, or with
    ``centres`` the class head's expected bin centre (:meth:`Method.class_prediction`)."""
    model.eval()

    def one(chunk: torch.Tensor) -> torch.Tensor:
        prediction, logits = model(chunk)
        return prediction if centres is None else Method.class_prediction(logits, centres)

    chunks = [one(x[i:i + batch_size]).double().cpu().numpy()
              for i in range(0, x.shape[0], batch_size)]
    return scaler.inverse(np.concatenate(chunks) if chunks else np.zeros(0))


def train_model(
    model: RegClsModel,
    method: Method,
    data: TrainData,
    recipe: TrainRecipe,
    orders: list[np.ndarray],
    on_epoch: Callable[[], None] | None = None,
) -> dict:
    """Train ``model`` in place on ``orders``' batches under ``method``'s objective; load
    and report its best validation epoch (scored with the method's regression loss)."""
    optimizer = make_optimizer(model, recipe)
    has_classes = method.head is not None
    best = {"val_score": float("inf"), "epoch": -1, "state": None}
    train_loss = float("nan")
    for epoch, order in enumerate(orders):
        model.train()
        total, batches = 0.0, 0
        order_t = torch.as_tensor(order, device=data.x_train.device)
        for start in range(0, order.size, recipe.batch_size):
            rows = order_t[start:start + recipe.batch_size]
            prediction, logits = model(data.x_train[rows])
            loss = method.objective(prediction, data.z_train[rows],
                                    logits if has_classes else None,
                                    data.labels[rows] if has_classes else None,
                                    weights=data.weights[rows] if data.weights is not None
                                    else None)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            batches += 1
        train_loss = total / max(batches, 1)
        if not np.isfinite(train_loss):
            raise RunError(f"training diverged at epoch {epoch} (loss {train_loss}); "
                             "lower the learning rate or lambda")
        score = method.regression.score(predict(model, data.x_val, data.scaler, data.centres),
                                        data.y_val)
        if score < best["val_score"]:
            best = {"val_score": score, "epoch": epoch,
                    "state": copy.deepcopy(model.state_dict())}
        if on_epoch is not None:
            on_epoch()
    if best["state"] is None:
        raise RunError("training produced no finite validation score; "
                         "lower the learning rate or lambda")
    model.load_state_dict(best["state"])
    return {"best_epoch": best["epoch"], "val_score": best["val_score"],
            "last_train_loss": train_loss}
