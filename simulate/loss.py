"""The reg+cls objective and the two heads, shared by the 1D engine and the real benchmarks.

``loss = λ · reg(prediction, target) + CE(logits, label)``, with ``reg`` the mean squared
(or absolute) error and the cross-entropy averaged over the samples whose label is not
``-1`` (ignored: the class-balanced mask drops those). Every leading dimension is a
separate model: a population of P models passes ``(P, B)`` predictions and ``(P, B, C)``
logits and gets P losses back, each exactly the loss that model would get alone.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from analysis.binning import IGNORE_LABEL

REGRESSION_LOSSES = ("mse", "l1")


def regression_loss(prediction: torch.Tensor, target: torch.Tensor, kind: str = "mse"):
    """Mean over the last dimension of the squared (``mse``) or absolute (``l1``) error."""
    error = prediction - target
    if kind == "mse":
        return error.square().mean(dim=-1)
    if kind == "l1":
        return error.abs().mean(dim=-1)
    raise ValueError(f"unknown regression loss {kind!r}; choose one of {REGRESSION_LOSSES}")


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged over the non-ignored samples of each model (0 if none)."""
    num_classes = logits.shape[-1]
    labels = labels.expand(logits.shape[:-1])
    valid = labels != IGNORE_LABEL
    per_sample = F.cross_entropy(
        logits.reshape(-1, num_classes), labels.clamp(min=0).reshape(-1), reduction="none"
    ).reshape(labels.shape)
    per_sample = torch.where(valid, per_sample, torch.zeros_like(per_sample))
    return per_sample.sum(dim=-1) / valid.sum(dim=-1).clamp(min=1)


def reg_cls_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    logits: torch.Tensor | None,
    labels: torch.Tensor | None,
    lam: float | torch.Tensor,
    regression: str = "mse",
) -> torch.Tensor:
    """``λ·reg + CE`` per model; with ``logits=None`` the plain regression loss (no λ)."""
    reg = regression_loss(prediction, target, regression)
    if logits is None:
        return reg
    return lam * reg + classification_loss(logits, labels)


class RegClsHeads(nn.Module):
    """A regression head and an optional class head on the same features.

    The class head only shapes the shared features during training; predictions come
    from the regression head alone.
    """

    def __init__(self, in_features: int, num_classes: int | None):
        super().__init__()
        self.regression = nn.Linear(in_features, 1)
        self.classification = nn.Linear(in_features, num_classes) if num_classes else None
        for layer in (self.regression, self.classification):
            if layer is not None:
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        prediction = self.regression(features).squeeze(-1)
        logits = self.classification(features) if self.classification is not None else None
        return prediction, logits
