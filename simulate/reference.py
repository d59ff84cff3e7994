"""One model at a time, the plain way: an ``nn.Module``, autograd and ``torch.optim``.

This is the yardstick for the population engine. Given the same :class:`Member` (data, seeds,
λ, learning rate) and :class:`~core.methods.Method` it trains, with autograd through the
method's whole objective, the same initial weights, the same batch orders and label
masks and the same optimizer, so its final weights must equal the population's (the honest
batching test). Two feeding modes reproduce the baselines of ``benchmarks/bench_simulate.py``:

* ``faithful``: a ``DataLoader`` over per-sample items, collated batch by batch, as the
  original 1D code did (run it in float64 for the original's arithmetic);
* ``strong``: the training set as one tensor, batches sliced from it, no ``DataLoader``.
"""

from __future__ import annotations

import numpy as np
import torch
from clsreg.analysis.errors import ConfigError
from clsreg.core.device import resolve_device, resolve_dtype
from clsreg.core.heads import RegClsHeads
from clsreg.core.methods import Method
from clsreg.core.recipe import make_optimizer
from clsreg.simulate.population import Architecture, BatchStream, Member, initial_parameters
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

FEEDS = ("strong", "faithful")


class ReferenceMLP(nn.Module):
    """``1 → hidden… → heads`` with ReLU after each hidden layer."""

    def __init__(self, architecture: Architecture):
        super().__init__()
        widths = (1, *architecture.hidden)
        layers: list[nn.Module] = []
        for i in range(len(architecture.hidden)):
            layers += [nn.Linear(widths[i], widths[i + 1]), nn.ReLU()]
        self.trunk = nn.Sequential(*layers)
        self.heads = RegClsHeads(widths[-1], architecture.num_classes or None)
        self.architecture = architecture

    def _linears(self) -> dict[str, nn.Linear]:
        linears = {f"{i}": layer for i, layer in enumerate(self.trunk[0::2])}
        linears["_reg"] = self.heads.regression
        if self.heads.classification is not None:
            linears["_cls"] = self.heads.classification
        return linears

    @torch.no_grad()
    def load(self, params: dict[str, np.ndarray]) -> None:
        """Copy in weights laid out as :meth:`Architecture.shapes` (``in × out``)."""
        for suffix, layer in self._linears().items():
            layer.weight.copy_(torch.as_tensor(params[f"w{suffix}"].T, dtype=layer.weight.dtype))
            layer.bias.copy_(torch.as_tensor(params[f"b{suffix}"], dtype=layer.bias.dtype))

    def export(self) -> dict[str, np.ndarray]:
        out = {}
        for suffix, layer in self._linears().items():
            out[f"w{suffix}"] = layer.weight.detach().cpu().double().numpy().T.copy()
            out[f"b{suffix}"] = layer.bias.detach().cpu().double().numpy().copy()
        return out

    def forward(self, x: torch.Tensor):
        return self.heads(self.trunk(x.unsqueeze(-1)))


class _Items(Dataset):
    """Per-sample items ``(x_i, y_i, label_i)`` as numpy scalars, as the original code had."""

    def __init__(self, x: np.ndarray, y: np.ndarray, labels: np.ndarray | None):
        self.x, self.y, self.labels = x, y, labels

    def __len__(self) -> int:
        return self.x.size

    def __getitem__(self, i: int):
        label = -1 if self.labels is None else int(self.labels[i])
        return self.x[i], self.y[i], label


class _FixedOrder(Sampler):
    def __init__(self):
        self.order: np.ndarray = np.empty(0, dtype=np.int64)

    def __iter__(self):
        return iter(self.order.tolist())

    def __len__(self) -> int:
        return self.order.size


def train_single(
    architecture: Architecture,
    member: Member,
    method: Method,
    feed: str = "strong",
    initial: dict[str, np.ndarray] | None = None,
    max_steps_per_epoch: int | None = None,
    dtype: str = "float32",
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """Train one model with its member's recipe and return its final weights (float64 numpy,
    population layout).

    ``max_steps_per_epoch`` cuts every epoch short (for timing a subset of the work).
    """
    if feed not in FEEDS:
        raise ConfigError(f"unknown feed {feed!r}; choose one of {', '.join(FEEDS)}")
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    method.check_classes(architecture.num_classes)
    model = ReferenceMLP(architecture).to(device=device, dtype=dtype)
    model.load(initial if initial is not None
               else initial_parameters(architecture, member.init_seed))
    optimizer = make_optimizer(model, member.recipe)
    stream = BatchStream(member)
    has_head = architecture.num_classes > 0
    batch = member.recipe.batch_size
    steps = member.x.size // batch
    if max_steps_per_epoch is not None:
        steps = min(steps, max_steps_per_epoch)

    def step(x: torch.Tensor, y: torch.Tensor, labels: torch.Tensor,
             weights: torch.Tensor | None) -> None:
        optimizer.zero_grad(set_to_none=True)
        prediction, logits = model(x)
        loss = method.objective(prediction, y, logits, labels if has_head else None,
                                member.lam, weights)
        loss.backward()
        optimizer.step()

    if feed == "faithful":
        if member.weights is not None:
            raise ConfigError("the faithful feed has no per-sample weights; use feed 'strong'")
        items = _Items(member.x, member.y, None)
        sampler = _FixedOrder()
        loader = DataLoader(items, batch_size=batch, sampler=sampler, drop_last=True)
        for _ in range(member.recipe.epochs):
            sampler.order, items.labels = stream.next_epoch()
            for i, (x, y, labels) in enumerate(loader):
                if i == steps:
                    break
                step(x.to(device, dtype), y.to(device, dtype), labels.to(device), None)
        return model.export()

    x_all = torch.as_tensor(member.x, device=device, dtype=dtype)
    y_all = torch.as_tensor(member.y, device=device, dtype=dtype)
    w_all = (torch.as_tensor(member.weights, device=device, dtype=dtype)
             if member.weights is not None else None)
    for _ in range(member.recipe.epochs):
        order, labels = stream.next_epoch()
        order_t = torch.as_tensor(order, device=device)
        x, y = x_all[order_t], y_all[order_t]
        w = w_all[order_t] if w_all is not None else None
        lab = torch.as_tensor(labels, device=device)[order_t] if has_head else None
        for i in range(steps):
            cut = slice(i * batch, (i + 1) * batch)
            step(x[cut], y[cut], lab[cut] if has_head else None,
                 w[cut] if w is not None else None)
    return model.export()
