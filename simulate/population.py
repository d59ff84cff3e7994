"""Population training: P independent MLPs of one architecture trained in lockstep.

The study needs thousands of tiny trainings (``1 → 6 → 15`` MLPs with a regression head and
an optional class head). One at a time they leave the machine idle between kernel calls, so
we hold a *population* of P models as stacked weight tensors — every parameter of every model
lives in one ``(P, D)`` buffer — and run one batched forward/backward per step. Each model keeps
its own data, batch order, initial weights, λ, learning rate and weight decay, and its own
optimizer state: Adam and SGD act elementwise, so one update of the stacked buffer *is* P
separate optimizers. Gradients are written by hand (the MLP is small and fixed), which lets the
big class heads run in cache-sized groups of models with their softmax computed in place.

Models never mix: every reduction runs within one model's slice. A model whose gradient turns
non-finite (or overflows when summed) is flagged diverged and frozen where it stands;
the others go on with exactly the numbers they would have had without it.

All randomness (initial weights, batch orders, class-balancing masks) comes from NumPy
generators seeded per model: a model sees the same draws on any device, in any population and
in any order of runs. Its arithmetic is also its own (every op is per model; on the CPU the
optimizer treats each model's row as a separate tensor), so adding or removing other models
leaves its numbers unchanged; another device, dtype or CPU thread count (the BLAS splits the
batch sums by thread) changes them only by rounding.

(About 550 lines: one engine — layout, forward, hand-written backward, two optimizer paths and
prediction share the stacked buffer and its views; split apart, each part would reach into
the others' private state.)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from clsreg.analysis.binning import balanced_label_mask
from clsreg.analysis.errors import ConfigError
from clsreg.core.device import resolve_device, resolve_dtype
from clsreg.core.methods import MSE, Method
from clsreg.core.recipe import ADAM_BETAS, ADAM_EPS, TrainRecipe

# A class-head group holds about this many logits (4 MiB in float32): small enough for the
# group's logits to stay in the cores' L2 caches while softmax, its gradient and both matmuls
# run, large enough to keep both cores busy.
CPU_LOGITS_PER_GROUP = 1 << 20
EVAL_LOGITS_PER_CHUNK = {"cpu": 1 << 22, "cuda": 1 << 27}
# A model whose final training MSE exceeds this multiple of the training-target variance (the
# MSE of predicting the mean) has left the data's scale: it is flagged diverged even when its
# numbers stayed finite (in float64, or with every ReLU dead, a blown-up model can stay finite).
DIVERGED_MSE_FACTOR = 1e3


def flush_subnormals() -> bool:
    """Flush subnormal floats to zero in this process's CPU arithmetic (a process-wide mode).

    As a class head grows confident, far-away classes get probabilities (and weights,
    gradients and Adam moments) below 1e-38: subnormal floats, which x86 CPUs handle up to
    100 times slower, so late epochs slow down several-fold. Flushing changes only values 30
    orders of magnitude below float32 resolution. The mode is per thread and inherited by
    threads created later, so call this before the first parallel torch operation (the
    sweep does, first thing); torch's worker threads created earlier keep their mode.
    """
    return bool(torch.set_flush_denormal(True))


@dataclass(frozen=True)
class Architecture:
    """``1 → hidden[0] → … → hidden[-1]`` with ReLU after each, a regression head and, when
    ``num_classes > 0``, a class head on the last hidden features."""

    hidden: tuple[int, ...] = (6, 15)
    num_classes: int = 0

    def __post_init__(self):
        if not self.hidden or any(int(h) != h or h < 1 for h in self.hidden):
            raise ConfigError(f"hidden widths must be positive integers, got {self.hidden!r}")
        if self.num_classes != 0 and self.num_classes < 2:
            raise ConfigError(f"number of classes must be 0 (no class head) or >= 2, "
                              f"got {self.num_classes}")

    def shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """Parameter names and per-model shapes, in buffer order (weights are ``in × out``)."""
        out = []
        widths = (1, *self.hidden)
        for i in range(len(self.hidden)):
            out += [(f"w{i}", (widths[i], widths[i + 1])), (f"b{i}", (widths[i + 1],))]
        out += [("w_reg", (self.hidden[-1], 1)), ("b_reg", (1,))]
        if self.num_classes:
            out += [("w_cls", (self.hidden[-1], self.num_classes)),
                    ("b_cls", (self.num_classes,))]
        return out

    def num_parameters(self) -> int:
        return int(sum(np.prod(shape) for _, shape in self.shapes()))

    def flops_per_sample(self) -> int:
        """Multiply-add FLOPs of one training sample (forward and backward matmuls)."""
        widths = (1, *self.hidden)
        trunk = sum(widths[i] * widths[i + 1] for i in range(len(self.hidden)))
        heads = self.hidden[-1] * (1 + self.num_classes)
        # Forward 2·k·n per layer; backward twice that (input and weight gradients).
        return 6 * (trunk + heads)


@dataclass(frozen=True)
class Member:
    """One model of a population: its data, its hyper-parameters and its seeds.

    ``recipe`` is how it trains: members of one population share the optimizer, epochs and
    batch size, and may differ in learning rate and weight decay. ``labels`` are the class
    labels of the training targets (None without a class head); with ``keep`` (per-class
    keep probabilities) a fresh class-balanced subsample of labels is drawn every epoch, the
    rest set to -1. ``weights`` are the per-sample weights of the
    regression term (None: the method has no weighting). ``order_seed`` seeds the batch order
    (and the label masks); a method's model and its baseline share it and ``init_seed``, so
    they see the same batches from the same starting trunk.
    """

    x: np.ndarray
    y: np.ndarray
    lam: float = 1.0
    recipe: TrainRecipe = TrainRecipe()
    init_seed: int = 0
    order_seed: tuple[int, ...] = (0,)
    labels: np.ndarray | None = None
    keep: np.ndarray | None = None
    weights: np.ndarray | None = None
    # Bin centres of the class head, for a method that predicts from classes (HL-Gauss).
    centres: np.ndarray | None = None

    def trained_with(self, **changes) -> Member:
        """This member with its recipe's fields changed (``lr=…``, ``epochs=…``, …)."""
        return replace(self, recipe=replace(self.recipe, **changes))


def xavier_uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """Glorot/Xavier uniform ``in × out`` weights, as ``nn.init.xavier_uniform_`` draws them."""
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=(fan_in, fan_out))


def initial_parameters(architecture: Architecture, init_seed: int) -> dict[str, np.ndarray]:
    """Xavier-uniform weights and zero biases, float64, from the model's own seed.

    The trunk and regression head come from one stream, the class head from another, so a
    reg model and its reg+cls partner start from the same trunk whatever the class count.
    """
    trunk_rng = np.random.default_rng([int(init_seed), 0])
    head_rng = np.random.default_rng([int(init_seed), 1])
    params = {}
    for name, shape in architecture.shapes():
        if name.startswith("b"):
            params[name] = np.zeros(shape)
        elif name == "w_cls":
            params[name] = xavier_uniform(head_rng, *shape)
        else:
            params[name] = xavier_uniform(trunk_rng, *shape)
    return params


class BatchStream:
    """A model's batch orders and label masks, epoch by epoch, from its own seed."""

    def __init__(self, member: Member):
        self.member = member
        self._order_rng = np.random.default_rng([*member.order_seed, 0])
        self._mask_rng = np.random.default_rng([*member.order_seed, 1])

    def next_epoch(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The permutation of the training set for the next epoch, and that epoch's labels."""
        order = self._order_rng.permutation(self.member.x.size)
        labels = self.member.labels
        if labels is not None and self.member.keep is not None:
            labels = balanced_label_mask(labels, self.member.keep, self._mask_rng)
        return order, labels


@dataclass
class PopulationResult:
    """Final weights (float64 numpy, per model), training MSE and the divergence flags."""

    parameters: list[dict[str, np.ndarray]]
    train_mse: np.ndarray
    diverged: np.ndarray
    population: Population = field(repr=False)


def mean_squared_error(prediction: np.ndarray, target: np.ndarray) -> float:
    """MSE in float64 (``inf``/``nan`` pass through, so a blown-up model shows as such)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return MSE.score(prediction, target)


def shared_recipe(members: Sequence[Member]) -> TrainRecipe:
    """What the members' recipes share: one optimizer, epoch count and batch size (each
    member keeps its own learning rate and weight decay)."""
    first = members[0].recipe
    for m in members[1:]:
        if (m.recipe.optimizer, m.recipe.epochs, m.recipe.batch_size) != (
                first.optimizer, first.epochs, first.batch_size):
            raise ConfigError("a population's members must share the optimizer, the number of "
                              "epochs and the batch size")
    return first


class Population:
    """P models of one architecture and method, their stacked weights and optimizer state.

    The method gives the objective's gradient at the outputs (regression prediction and
    logits); the backward through the MLP trunk is written here by hand. Members may differ
    in data, λ, learning rate, weight decay and seeds.
    """

    def __init__(self, architecture: Architecture, members: Sequence[Member], method: Method,
                 initial: Sequence[dict[str, np.ndarray]] | None = None,
                 fused_update: bool | None = None, dtype: str = "float32", device: str = "cpu"):
        if not members:
            raise ConfigError("a population needs at least one model")
        method.check_classes(architecture.num_classes)
        self.architecture = architecture
        self.recipe = recipe = shared_recipe(members)
        self.method = method
        self.members = list(members)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)
        self.size = len(self.members)
        for m in self.members:
            if (m.labels is None) != (architecture.num_classes == 0):
                raise ConfigError("members need class labels exactly when there is a class head")
            if (m.weights is None) != (method.weighting is None):
                raise ConfigError("members need sample weights exactly when the method weights")
            if (m.centres is None) != (not method.predicts_from_classes):
                raise ConfigError("members need bin centres exactly when the method predicts "
                                  "from classes")
            if m.x.size < recipe.batch_size:
                raise ConfigError(f"a training set of {m.x.size} points is smaller than one "
                                  f"batch of {recipe.batch_size}")
        if initial is None:
            initial = [initial_parameters(architecture, m.init_seed) for m in self.members]
        self._layout = []
        offset = 0
        for name, shape in architecture.shapes():
            count = int(np.prod(shape))
            self._layout.append((name, shape, offset, count))
            offset += count
        flat = np.stack([np.concatenate([p[name].reshape(-1) for name, *_ in self._layout])
                         for p in initial])
        kwargs = {"device": self.device, "dtype": self.dtype}
        self.params = torch.as_tensor(flat, **kwargs).contiguous()
        self.grad = torch.zeros_like(self.params)
        self.exp_avg = torch.zeros_like(self.params)
        self.exp_avg_sq = torch.zeros_like(self.params)
        self.steps = torch.zeros(self.size, 1, **kwargs)
        self.alive = torch.ones(self.size, dtype=torch.bool, device=self.device)
        self.lam = torch.tensor([[m.lam] for m in self.members], **kwargs)
        self.lr = torch.tensor([[m.recipe.lr] for m in self.members], **kwargs)
        self.weight_decay = torch.tensor([[m.recipe.weight_decay] for m in self.members],
                                         **kwargs)
        self.p = self._views(self.params)
        # Each weight matrix is followed by its bias in the buffer, so ``[W; b]`` is one
        # ``(in + 1) × out`` matrix: with a column of ones appended to the inputs, a layer
        # (and its weight-and-bias gradient) is a single batched matmul.
        self.wb = {suffix: self._augmented(suffix) for suffix in self._layers()}
        n_max = max(m.x.size for m in self.members)
        self._x = self._padded([m.x for m in self.members], n_max, self.dtype)
        self._y = self._padded([m.y for m in self.members], n_max, self.dtype)
        self._w = (self._padded([m.weights for m in self.members], n_max, self.dtype)
                   if method.weighting is not None else None)
        self._centres = (torch.as_tensor(np.stack([m.centres for m in self.members]), **kwargs)
                         if method.predicts_from_classes else None)
        self.train_sizes = np.array([m.x.size for m in self.members])
        self.steps_per_epoch = self.train_sizes // recipe.batch_size
        # On the CPU, reading the divergence flags each step costs nothing, so the optimizer
        # runs fused over contiguous runs of live models; on a GPU that read would stall the
        # queue every step, so there the update is masked arithmetic that never syncs.
        self.fused_update = self.device.type == "cpu" if fused_update is None else fused_update
        self._row_steps = torch.zeros(self.size, dtype=torch.float32)
        self._ones = torch.ones(self.size, dtype=torch.float32)
        self._fused_groups = None
        self._host_lr = np.array([m.recipe.lr for m in self.members], dtype=np.float64)
        self._host_wd = np.array([m.recipe.weight_decay for m in self.members],
                                 dtype=np.float64)
        if self.device.type == "cpu":
            per_model = recipe.batch_size * max(architecture.num_classes, 1)
            self.head_group = max(1, CPU_LOGITS_PER_GROUP // per_model)
        else:
            self.head_group = self.size
        self.head_group = min(self.head_group, self.size)
        # One logits buffer, reused every step: a fresh multi-megabyte tensor per step costs
        # page faults that can double the class head's time.
        self._logits = (torch.empty(self.head_group, recipe.batch_size, architecture.num_classes,
                                    **kwargs) if architecture.num_classes else None)

    def _layers(self) -> list[str]:
        return [name[1:] for name, *_ in self._layout if name.startswith("w")]

    def _augmented(self, suffix: str) -> torch.Tensor:
        offsets = {name: (offset, shape) for name, shape, offset, _ in self._layout}
        offset, (fan_in, fan_out) = offsets[f"w{suffix}"]
        assert offsets[f"b{suffix}"][0] == offset + fan_in * fan_out
        return self.params[:, offset:offset + (fan_in + 1) * fan_out].view(
            self.size, fan_in + 1, fan_out)

    def _views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: flat[:, offset:offset + count].view(self.size, *shape)
                for name, shape, offset, count in self._layout}

    def _padded(self, arrays: list[np.ndarray], length: int, dtype) -> torch.Tensor:
        out = np.zeros((len(arrays), length), dtype=np.float64 if dtype.is_floating_point
                       else np.int64)
        for i, a in enumerate(arrays):
            out[i, :a.size] = a
        return torch.as_tensor(out, device=self.device, dtype=dtype)

    # ------------------------------------------------------------------ one training step
    @staticmethod
    def _with_ones(values: torch.Tensor) -> torch.Tensor:
        """``(P, N)`` inputs as ``(P, N, 2)`` rows ``[x, 1]`` (the bias input)."""
        return torch.stack([values, torch.ones_like(values)], dim=2)

    def _forward_trunk(self, x_aug: torch.Tensor) -> list[torch.Tensor]:
        """Augmented activations ``[x, 1], [a1, 1], …, [aL, 1]`` of every layer.

        A layer's weights get an extra output column ``(0, …, 0, 1)`` so that the matmul
        itself writes the ones column of the next layer's input (ReLU keeps it at 1).
        """
        acts = [x_aug]
        for i in range(len(self.architecture.hidden)):
            wb = self.wb[str(i)]
            unit = torch.zeros_like(wb[:, :, :1])
            unit[:, -1] = 1.0
            acts.append(torch.bmm(acts[-1], torch.cat([wb, unit], dim=2)).clamp_(min=0))
        return acts

    def _class_head_backward(self, features: torch.Tensor, labels: torch.Tensor,
                             grad_features: torch.Tensor) -> torch.Tensor:
        """Gradient of the class head's ``[W; b]`` under the method's class loss, by group.

        The loss overwrites the group's logits with ``G`` and returns a row scale ``s`` (for
        cross-entropy ``G = softmax − onehot`` and ``s = 1 / n_valid`` on valid rows, 0 on
        ignored ones; see :mod:`core.methods`). ``s`` is applied to the small operands
        (features, feature gradient) instead of the ``B × C`` logits, which are touched only
        by the matmul that makes them, the loss's in-place gradient in one reused buffer and
        the two matmuls that use them, group by group so that they stay in cache.
        ``grad_features`` receives the features' gradient.
        """
        loss = self.method.head.loss
        wb = self.wb["_cls"]
        hidden = wb.shape[1] - 1
        grads = []
        for start in range(0, self.size, self.head_group):
            part = slice(start, start + self.head_group)
            feats = features[part]
            logits = torch.bmm(feats, wb[part], out=self._logits[:feats.shape[0]])
            scale = loss.gradient_in_place(logits, labels[part])
            if scale is None:
                grads.append(torch.bmm(feats.transpose(1, 2), logits).flatten(1))
                grad_features[part].add_(torch.bmm(logits, wb[part, :hidden].transpose(1, 2)))
                continue
            grads.append(torch.bmm((feats * scale).transpose(1, 2), logits).flatten(1))
            back = torch.bmm(logits, wb[part, :hidden].transpose(1, 2))
            grad_features[part].addcmul_(back, scale)
        return grads[0] if len(grads) == 1 else torch.cat(grads)

    def _backward(self, acts: list[torch.Tensor], y: torch.Tensor, labels: torch.Tensor | None,
                  weights: torch.Tensor | None) -> None:
        """Gradient of the method's objective (``λ·reg + cls``, or ``reg``) into ``self.grad``.

        The method gives the gradient at the regression output and the logits; from there
        the backward through the heads and the trunk is by hand.

        Each ``[W; b]`` gradient is one matmul of the augmented input with the output
        gradient, written to a fresh tensor (a matmul or sum written into a strided slice of
        the buffer is far slower) and laid into the flat buffer by one ``cat``.
        """
        features = acts[-1]
        hidden = features.shape[2] - 1
        wb_reg = self.wb["_reg"]
        prediction = torch.bmm(features, wb_reg).squeeze(2)
        # A method that predicts from classes trains its class loss alone.
        scale = (0.0 if self.method.predicts_from_classes
                 else self.lam if self.method.scales_regression else 1.0)
        grad_pred = self.method.regression.output_gradient(prediction, y, scale,
                                                           weights).unsqueeze(2)
        grads = {"_reg": torch.bmm(grad_pred.transpose(1, 2), features).flatten(1)}
        grad_act = torch.bmm(grad_pred, wb_reg[:, :hidden].transpose(1, 2))
        if labels is not None:
            grads["_cls"] = self._class_head_backward(features, labels, grad_act)
        for i in reversed(range(len(self.architecture.hidden))):
            grad_act.mul_(acts[i + 1][:, :, :-1] > 0)
            grads[str(i)] = torch.bmm(acts[i].transpose(1, 2), grad_act).flatten(1)
            if i:
                fan_in = acts[i].shape[2] - 1
                grad_act = torch.bmm(grad_act, self.wb[str(i)][:, :fan_in].transpose(1, 2))
        torch.cat([grads[suffix] for suffix in self._layers()], dim=1, out=self.grad)

    def _update_masked(self, stepping: torch.Tensor | None) -> None:
        """One optimizer step for every model that is alive (and has a batch this step).

        Matches ``torch.optim.Adam`` / ``SGD`` with L2 ``weight_decay`` (or ``AdamW`` with
        decoupled decay) model by model; a frozen model's weights, moments and step count
        stay exactly as they were.
        """
        finite = torch.isfinite(self.grad.sum(dim=1))
        self.alive &= finite
        update = self.alive if stepping is None else self.alive & stepping
        on = update.to(self.dtype).unsqueeze(1)
        grad = self.grad.mul_(on)
        if self.recipe.optimizer == "adamw":
            self.params.mul_(1.0 - self.lr * self.weight_decay * on)
        else:
            grad.addcmul_(self.params, self.weight_decay * on)
        grad.nan_to_num_(0.0, 0.0, 0.0)  # a frozen model's NaN/inf must not reach its moments
        if self.recipe.optimizer == "sgd":
            self.params.addcmul_(grad, -self.lr * on)
            return
        beta1, beta2 = ADAM_BETAS
        self.steps.add_(on)
        self.exp_avg.lerp_(grad, (1.0 - beta1) * on)
        self.exp_avg_sq.mul_(1.0 - (1.0 - beta2) * on).addcmul_(grad, grad * ((1.0 - beta2) * on))
        stepped = self.steps > 0
        correction1 = torch.where(stepped, 1.0 - beta1 ** self.steps, 1.0)
        correction2 = torch.where(stepped, 1.0 - beta2 ** self.steps, 1.0)
        denom = self.exp_avg_sq.sqrt().div_(correction2.sqrt()).add_(ADAM_EPS)
        self.params.addcdiv_(self.exp_avg * (-self.lr * on / correction1), denom)

    def _update_fused(self, stepping: np.ndarray | None) -> None:
        """The same step as :meth:`_update_masked`, with the flags read on the host.

        Each live model's row of the buffer is one tensor of a fused ``torch._fused_adam_``
        (or SGD) call per (learning rate, weight decay); diverged models and models without a
        batch this step are left out, so their weights and moments stay exactly as they were.
        A row is always its own tensor, so a model's arithmetic never depends on its
        neighbours in the population.
        """
        finite = torch.isfinite(self.grad.sum(dim=1))
        self.alive &= finite
        active = self.alive.cpu().numpy()
        if stepping is not None:
            active = active & stepping
        signature = active.tobytes()
        if self._fused_groups is None or self._fused_groups[0] != signature:
            groups: dict[tuple[float, float], list[int]] = {}
            for row in np.flatnonzero(active):
                groups.setdefault((self._host_lr[row], self._host_wd[row]), []).append(int(row))
            self._fused_groups = (signature, [
                (lr, wd, torch.as_tensor(rows), [self.params[r] for r in rows],
                 [self.grad[r] for r in rows], [self.exp_avg[r] for r in rows],
                 [self.exp_avg_sq[r] for r in rows], [self._row_steps[r] for r in rows])
                for (lr, wd), rows in groups.items()])
        for lr, wd, index, params, grads, exp_avg, exp_avg_sq, steps in self._fused_groups[1]:
            if self.recipe.optimizer == "sgd":
                if wd:
                    torch._foreach_add_(grads, params, alpha=wd)
                torch._foreach_add_(params, grads, alpha=-lr)
                continue
            self._row_steps.index_add_(0, index, self._ones[:index.numel()])
            fused = torch._fused_adamw_ if self.recipe.optimizer == "adamw" else torch._fused_adam_
            fused(params, grads, exp_avg, exp_avg_sq, [], steps, lr=lr, beta1=ADAM_BETAS[0],
                  beta2=ADAM_BETAS[1], weight_decay=wd, eps=ADAM_EPS, amsgrad=False,
                  maximize=False)

    def train(self, progress: Callable[[float], None] | None = None) -> PopulationResult:
        """Train every model for ``epochs`` epochs of ``N // batch`` batches (last one dropped).

        ``progress`` is called after every epoch with the number of models it stands for. On
        the CPU, late epochs run much faster with :func:`flush_subnormals` in effect.
        """
        self._run_epochs(progress)
        predictions, _ = self.predict([m.x for m in self.members])
        train_mse = np.array([mean_squared_error(p, m.y)
                              for p, m in zip(predictions, self.members, strict=True)])
        scale = np.array([np.var(m.y) for m in self.members])
        with np.errstate(invalid="ignore"):
            blown_up = ~np.isfinite(train_mse) | (train_mse > DIVERGED_MSE_FACTOR * scale)
        diverged = ~self.alive.cpu().numpy() | blown_up
        return PopulationResult(parameters=self.parameters(), train_mse=train_mse,
                                diverged=diverged, population=self)

    def _run_epochs(self, progress: Callable[[float], None] | None) -> None:
        streams = [BatchStream(m) for m in self.members]
        has_head = self.architecture.num_classes > 0
        max_steps = int(self.steps_per_epoch.max())
        uneven = bool((self.steps_per_epoch != max_steps).any())
        steps_tensor = torch.as_tensor(self.steps_per_epoch, device=self.device)
        n_max = self._x.shape[1]
        # Batch orders (and label masks) are drawn on the host, each model from its own
        # generator; NumPy's shuffle releases the GIL, so next to a GPU a few threads draw the
        # next epoch's while the current one trains. On the CPU extra threads would only
        # compete with the training's own, so one draws ahead.
        workers = 1 if self.device.type == "cpu" else max(1, min(8, os.cpu_count() or 1))
        with ThreadPoolExecutor(workers) as pool, ThreadPoolExecutor(1) as ahead:
            def draw():
                return list(pool.map(BatchStream.next_epoch, streams))

            upcoming = ahead.submit(draw)
            for epoch in range(self.recipe.epochs):
                drawn = upcoming.result()
                if epoch + 1 < self.recipe.epochs:  # each generator advances once per epoch
                    upcoming = ahead.submit(draw)
                self._train_epoch(drawn, n_max, max_steps, has_head, uneven, steps_tensor)
                if progress is not None:
                    progress(self.size / self.recipe.epochs)

    def _train_epoch(self, drawn: list[tuple[np.ndarray, np.ndarray | None]], n_max: int,
                     max_steps: int, has_head: bool, uneven: bool,
                     steps_tensor: torch.Tensor) -> None:
        """One epoch: every model's training set in its own order, ``max_steps`` batches."""
        batch = self.recipe.batch_size
        order = self._padded([d[0] for d in drawn], n_max, torch.int64)
        x = self._with_ones(self._x.gather(1, order))
        y = self._y.gather(1, order)
        weights = self._w.gather(1, order) if self._w is not None else None
        labels = None
        if has_head:
            labels = self._padded([d[1] for d in drawn], n_max, torch.int64).gather(1, order)
        for step in range(max_steps):
            cut = slice(step * batch, (step + 1) * batch)
            acts = self._forward_trunk(x[:, cut])
            self._backward(acts, y[:, cut], labels[:, cut] if has_head else None,
                           weights[:, cut] if weights is not None else None)
            if self.fused_update:
                self._update_fused(step < self.steps_per_epoch if uneven else None)
            else:
                self._update_masked(step < steps_tensor if uneven else None)

    # ------------------------------------------------------------------ results
    def parameters(self) -> list[dict[str, np.ndarray]]:
        """Current weights of each model, float64 numpy, in ``Architecture.shapes`` layout."""
        flat = self.params.detach().cpu().to(torch.float64).numpy()
        return [{name: flat[i, offset:offset + count].reshape(shape)
                 for name, shape, offset, count in self._layout} for i in range(self.size)]

    @torch.no_grad()
    def predict(self, xs: Sequence[np.ndarray], with_classes: bool = False
                ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """Predictions (float64) of each model on its own inputs ``xs[i]`` — the regression
        head's, or the class head's expected bin centre for a method that predicts from
        classes — and the arg-max class of the class head when asked."""
        n_max = max(x.size for x in xs)
        x_all = self._padded(list(xs), n_max, self.dtype)
        classes = max(self.architecture.num_classes, 1)
        budget = EVAL_LOGITS_PER_CHUNK.get(self.device.type, EVAL_LOGITS_PER_CHUNK["cpu"])
        chunk = max(1, budget // (self.size * classes))
        preds, tops = [], []
        for start in range(0, n_max, chunk):
            features = self._forward_trunk(self._with_ones(x_all[:, start:start + chunk]))[-1]
            if self._centres is not None:
                pred = self.method.class_prediction(torch.bmm(features, self.wb["_cls"]),
                                                    self._centres)
            else:
                pred = torch.bmm(features, self.wb["_reg"]).squeeze(2)
            preds.append(pred.to(torch.float64).cpu())
            if with_classes and self.architecture.num_classes:
                tops.append(torch.bmm(features, self.wb["_cls"]).argmax(dim=2).cpu())
        pred_all = torch.cat(preds, dim=1).numpy()
        out = [pred_all[i, :x.size] for i, x in enumerate(xs)]
        if tops:
            top_all = torch.cat(tops, dim=1).numpy()
            return out, [top_all[i, :x.size] for i, x in enumerate(xs)]
        return out, None
