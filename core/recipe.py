"""The training recipe: how one model is optimized, in one value, and its optimizer.

Every model the package trains — a member of a 1D population, the autograd reference, a
real-table MLP, an image or video benchmark — is trained with a :class:`TrainRecipe`; a
study's stored config spells its recipe's fields, and two runs with equal recipes, methods,
data and seeds are the same run. The seed is not part of the recipe: a recipe is chosen once
and retrained on many seeds (the replicates), which pair across methods.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from clsreg.analysis.validate import check_choice, check_int, check_number
from clsreg.analysis.vocabulary import OPTIMIZERS
from torch import nn

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@dataclass(frozen=True)
class TrainRecipe:
    """Optimizer, learning rate, weight decay, epochs and batch size.

    ``optimizer`` also says how the decay is applied: ``adam`` and ``sgd`` add it to the
    gradient (coupled L2, so it is weighed against the loss's scale), ``adamw`` decays the
    weights directly (decoupled). Device, dtype and data workers are where a loop runs, not
    what it computes, and are passed next to the recipe.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    epochs: int = 80
    batch_size: int = 256

    def __post_init__(self) -> None:
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_number("learning rate", self.lr, positive=True)
        check_number("weight decay", self.weight_decay)
        check_int("epochs", self.epochs, 1)
        check_int("batch size", self.batch_size, 1)


def make_optimizer(model: nn.Module, recipe: TrainRecipe) -> torch.optim.Optimizer:
    """``torch.optim`` Adam (the engine's betas and eps) or SGD, with L2 weight decay, or
    AdamW with decoupled decay: the optimizer of every autograd training."""
    if recipe.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=recipe.lr, betas=ADAM_BETAS,
                                eps=ADAM_EPS, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=ADAM_BETAS,
                                 eps=ADAM_EPS, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
