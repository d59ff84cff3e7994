"""An MLP backbone with the shared regression and class heads on its last features.

Reg and reg+cls must start from the same weights: :func:`build_pair` draws the backbone
and the regression head once from the seed and gives reg+cls a copy of them plus a class
head drawn from a stream of its own, so the only difference between the two models is
the class head and its loss.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from simulate.loss import RegClsHeads

DEFAULT_HIDDEN = (128, 64)


class MLPBackbone(nn.Module):
    """``in → hidden[0] → ... → hidden[-1]``, ReLU after each layer, Xavier init."""

    def __init__(self, in_features: int, hidden: tuple[int, ...] = DEFAULT_HIDDEN):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for out in hidden:
            linear = nn.Linear(width, out)
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)
            layers += [linear, nn.ReLU()]
            width = out
        self.layers = nn.Sequential(*layers)
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class RegClsModel(nn.Module):
    """Backbone features → (regression prediction, class logits or None)."""

    def __init__(self, backbone: MLPBackbone, heads: RegClsHeads):
        super().__init__()
        self.backbone = backbone
        self.heads = heads

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.heads(self.backbone(x))


def build_pair(
    in_features: int, num_classes: int, seed: int, hidden: tuple[int, ...] = DEFAULT_HIDDEN
) -> tuple[RegClsModel, RegClsModel]:
    """(reg, reg+cls) with identical backbone and regression-head weights for ``seed``."""
    torch.manual_seed(seed)
    backbone = MLPBackbone(in_features, hidden)
    reg = RegClsModel(backbone, RegClsHeads(backbone.out_features, None))
    torch.manual_seed(seed + 1_000_003)
    heads = RegClsHeads(reg.backbone.out_features, num_classes)
    heads.regression.load_state_dict(reg.heads.regression.state_dict())
    cls = RegClsModel(copy.deepcopy(reg.backbone), heads)
    return reg, cls
