"""The two heads on a model's last features: regression, and the class head of a method.

The class head only shapes the shared features during training; predictions come from the
regression head alone. Used by the autograd reference and the real-data models; the
population engine holds the same weights as stacked tensors.
"""

from __future__ import annotations

import torch
from torch import nn


class RegClsHeads(nn.Module):
    """A regression head and, when ``num_classes`` is set, a class head (Xavier, zero bias)."""

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
