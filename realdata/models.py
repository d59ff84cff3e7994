"""An MLP backbone with the shared regression and class heads on its last features.

All methods of a seed must start from the same weights: :func:`build_model` draws the
backbone and the regression head from the seed alone and a class head from a stream of its
own, so two methods' models differ only in the class head and the loss. Both draws run in
:func:`core.seeding.seeded`, so building a model leaves torch's global random state alone.
"""

from __future__ import annotations

import torch
from clsreg.core.heads import RegClsHeads
from clsreg.core.seeding import seeded
from torch import nn

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


# The class head's own random stream: seed + this offset.
CLASS_SEED_OFFSET = 1_000_003


def seeded_heads(width: int, num_classes: int, seed: int) -> RegClsHeads:
    """The heads of one method for ``seed``, drawn right after its backbone: the regression
    head continues the seed's stream; a class head (``num_classes > 0``) comes from a stream
    of its own, so two methods' models differ only in what the class head adds."""
    regression = RegClsHeads(width, None)
    if not num_classes:
        return regression
    with seeded(seed + CLASS_SEED_OFFSET):
        heads = RegClsHeads(width, num_classes)
    heads.regression.load_state_dict(regression.regression.state_dict())
    return heads


def build_model(
    in_features: int, num_classes: int, seed: int, hidden: tuple[int, ...] = DEFAULT_HIDDEN
) -> RegClsModel:
    """The model of one method for ``seed``: every method gets the same backbone and
    regression-head weights (:func:`seeded_heads`)."""
    with seeded(seed):
        backbone = MLPBackbone(in_features, hidden)
        return RegClsModel(backbone, seeded_heads(backbone.out_features, num_classes, seed))
