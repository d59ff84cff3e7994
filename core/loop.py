"""The training loop of the image and video benchmarks: a DataLoader, one model, best-on-val.

Read top to bottom like nanoGPT's ``train.py``: per epoch, seed, shuffle, forward, the
method's objective on the valid samples (per image or per pixel), backward, step; score the
validation split in the target's units; keep the best epoch; checkpoint. The same loop
runs in one process or under ``torchrun`` with :class:`DistributedDataParallel` (gloo on
CPU, NCCL on CUDA): the batch order comes from :class:`DistributedSampler` in both cases,
so a run on W ranks with per-rank batch B/W sees the same global batches as one process
with batch B.

* Targets: the regression head learns ``z = (y − mean)/std`` (:class:`TargetScaler`); class
  labels come from the class edges in the target's units; a pixel with ``y ≤ 0`` or a
  non-finite ``y`` (no depth reading) is left out of every loss and score.
* Determinism: every epoch runs seeded from ``(seed, epoch)`` (:func:`core.seeding.seeded`,
  which leaves the caller's torch random state unchanged), so shuffling, augmentation and
  worker seeds depend on the seed and epoch alone, and a run resumed from its checkpoint
  ends with the weights of an uninterrupted one.
* Given batch orders (tables): one permutation of the training samples per epoch replaces
  the sampler's shuffle, so every method of a seed sees the same batches; precomputed
  per-sample targets (:class:`SampleTargets`) and a validation score of the caller's
  replace the coding's and the pooled regression loss.
* Checkpoints: after every epoch, atomically, model, optimizer, best weights and the loss
  curve; a rerun continues after the last finished epoch.
* Mixed precision: bfloat16 autocast on CUDA (no loss scaling needed) unless turned off;
  float32 on the CPU.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from clsreg.analysis.binning import bin_centres
from clsreg.analysis.errors import ConfigError, InputError, RunError
from clsreg.analysis.files import atomic_path
from clsreg.core.methods import Method
from clsreg.core.recipe import TrainRecipe, make_optimizer
from clsreg.core.seeding import seeded
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from tqdm import tqdm


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
class TargetCoding:
    """Targets in the units the heads learn: scaled for regression, binned for classes."""

    scaler: TargetScaler
    class_edges: np.ndarray  # C + 1 edges in the target's units

    def scaled(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.scaler.mean) / self.scaler.std

    def labels(self, y: torch.Tensor) -> torch.Tensor:
        """Class of each target; out-of-range targets clip (as ``assign_labels``)."""
        inner = torch.as_tensor(self.class_edges[1:-1], dtype=y.dtype, device=y.device)
        return torch.bucketize(y, inner, right=True)

    def centres(self, device: torch.device) -> torch.Tensor:
        """Class-bin centres on the scaled target (a method that predicts from classes)."""
        return torch.as_tensor(self.scaler.transform(bin_centres(self.class_edges)),
                               dtype=torch.float32,
                               device=device)


@dataclass(frozen=True)
class Ranks:
    """This process's place in a ``torchrun`` job (world 1: a plain process)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched_ranks() -> Ranks:
    """The ranks ``torchrun`` set in the environment (a plain process: one rank)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Ranks()
    return Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


@contextlib.contextmanager
def process_group(ranks: Ranks, device: torch.device) -> Iterator[None]:
    """Join the ``torchrun`` job's process group for the block (nothing for one rank)."""
    if ranks.world == 1 or dist.is_initialized():
        yield
        return
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def rank_device(device: torch.device, ranks: Ranks) -> torch.device:
    """One GPU per local rank under ``torchrun``; the CPU is shared."""
    if device.type == "cuda" and ranks.world > 1:
        return torch.device("cuda", ranks.local_rank)
    return device


@dataclass(frozen=True)
class SampleTargets:
    """Per-training-sample targets as the heads learn them, computed once by the caller:
    the scaled regression target and the class label (-1: no class loss for that sample)."""

    scaled: torch.Tensor  # (N,) float32
    labels: torch.Tensor  # (N,) int64


class OrderedBatches(Sampler):
    """Batches of ``batch_size`` consecutive positions of a given per-epoch order."""

    def __init__(self, orders: list[np.ndarray], batch_size: int):
        self.orders, self.batch_size, self.epoch = orders, batch_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        order = self.orders[self.epoch]
        for start in range(0, order.size, self.batch_size):
            yield order[start:start + self.batch_size].tolist()

    def __len__(self) -> int:
        return -(-self.orders[self.epoch].size // self.batch_size)


class Indexed(Dataset):
    """Items of ``dataset`` with their index, so per-sample weights can follow them."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        x, y = self.dataset[index]
        return index, x, y


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's randomness, from the run's seed and the epoch alone."""
    return int(np.random.SeedSequence([int(seed), int(epoch), 0xE90C]).generate_state(1)[0])


def unwrap_loader_error(error: Exception) -> Exception:
    """A worker's ``InputError`` (an unreadable image) comes back as one line, not the
    worker's traceback that the DataLoader wraps it in."""
    text = str(error).strip().splitlines()
    if text and "InputError: " in text[-1]:
        return InputError(text[-1].split("InputError: ", 1)[1])
    return error


def valid_targets(y: torch.Tensor) -> torch.Tensor:
    """Per-pixel targets count where a depth was read (finite, > 0); per-image ones all do."""
    if y.dim() == 1:
        return torch.ones_like(y, dtype=torch.bool)
    return torch.isfinite(y) & (y > 0)


def flat_outputs(prediction: torch.Tensor, logits: torch.Tensor | None,
                 valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Predictions (N,) and logits (N, C) of the valid samples or pixels, in float32."""
    prediction = prediction.float()[valid]
    if logits is not None:
        logits = (logits.movedim(1, -1) if logits.dim() > 2 else logits).float()[valid]
    return prediction, logits


def model_prediction(prediction: torch.Tensor, logits: torch.Tensor | None, method: Method,
                     centres: torch.Tensor | None) -> torch.Tensor:
    """The scaled prediction a method reports: the regression head's, or the class head's
    expected bin centre (per pixel for a depth map)."""
    if not method.predicts_from_classes:
        return prediction.float()
    scores = logits.movedim(1, -1) if logits.dim() > 2 else logits
    return Method.class_prediction(scores.float(), centres)


@torch.no_grad()
def predict_batches(model: nn.Module, dataset: Dataset, method: Method, coding: TargetCoding,
                    device: torch.device, batch_size: int, workers: int = 0,
                    mixed_precision: bool = True,
                    ) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """``(indices, prediction in target units, target)`` per batch of ``dataset``, in order."""
    model.eval()
    loader = DataLoader(Indexed(dataset), batch_size=batch_size, shuffle=False,
                        num_workers=workers, pin_memory=device.type == "cuda")
    centres = coding.centres(device) if method.predicts_from_classes else None
    try:
        for index, x, y in loader:
            with torch.autocast(device.type, dtype=torch.bfloat16,
                                enabled=mixed_precision and device.type == "cuda"):
                prediction, logits = model(x.to(device, non_blocking=True))
            scaled = model_prediction(prediction, logits, method, centres)
            yield (index.numpy(), scaled * coding.scaler.std + coding.scaler.mean,
                   y.to(device))
    except (RuntimeError, InputError) as error:
        raise unwrap_loader_error(error) from None


def validation_score(model: nn.Module, dataset: Dataset, method: Method, coding: TargetCoding,
                     device: torch.device, batch_size: int, workers: int = 0,
                     mixed_precision: bool = True) -> float:
    """The method's regression loss on the validation split, in the target's units, pooled
    over its valid samples (pixels)."""
    total, count = 0.0, 0
    for _, prediction, y in predict_batches(model, dataset, method, coding, device,
                                            batch_size, workers, mixed_precision):
        valid = valid_targets(y)
        terms = method.regression.per_sample(prediction[valid].double() - y[valid].double())
        total += float(terms.sum())
        count += int(valid.sum())
    return total / count if count else float("nan")


def mean_in_order(values: list[float]) -> float:
    """The mean of ``values`` summed left to right (NaN for none): an epoch's loss, the same
    number on every Python and numpy version."""
    total = 0.0
    for value in values:
        total += value
    return total / len(values) if values else float("nan")


CHECKPOINT_ENTRIES = ("epoch", "model", "optimizer", "steps", "best_score", "best_epoch",
                      "best_model")


def load_checkpoint(path: Path | None) -> dict | None:
    """The saved state of a run to resume (None: no checkpoint, start from epoch 0).

    A checkpoint that cannot be read (truncated, not a torch file) is one
    :class:`InputError` naming the file, exit 2; it is never discarded silently, since
    it may be the only copy of hours of training: deleting it restarts that run.
    """
    if path is None or not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file
        raise InputError(f"checkpoint {path} cannot be read ({type(error).__name__}); "
                         "delete it to restart that run") from None


def _matches(weights: object, model: nn.Module) -> bool:
    """Whether ``weights`` is a state dict of ``model``: the same names and shapes."""
    expected = model.state_dict()
    return (isinstance(weights, dict) and weights.keys() == expected.keys()
            and all(isinstance(v, torch.Tensor) and v.shape == expected[k].shape
                    for k, v in weights.items()))


def _checkpoint_problem(state: object, model: nn.Module, epochs: int) -> str | None:
    """What makes a readable checkpoint unusable for this run (None: nothing)."""
    if not isinstance(state, dict) or not set(CHECKPOINT_ENTRIES) <= state.keys():
        return "it is not a clsreg training checkpoint"
    epoch, best_epoch = state["epoch"], state["best_epoch"]
    if not (isinstance(epoch, int) and isinstance(best_epoch, int) and 0 <= epoch < epochs
            and -1 <= best_epoch <= epoch):
        return f"its epoch {epoch!r} (best {best_epoch!r}) is not one of this run's {epochs}"
    if not (isinstance(state["steps"], list)
            and all(isinstance(v, (int, float)) for v in state["steps"])
            and isinstance(state["best_score"], (int, float))):
        return "its loss curve or best score is not numbers"
    if not _matches(state["model"], model):
        return "its weights are not those of this run's model"
    if not (best_epoch == -1 and state["best_model"] is None
            or best_epoch >= 0 and _matches(state["best_model"], model)):
        return "its best weights are not those of this run's model"
    return None


def resume(state: dict | None, path: Path | None, model: nn.Module,
           optimizer: torch.optim.Optimizer, epochs: int) -> tuple[int, dict, list[float]]:
    """Load a checkpoint's state into ``model`` and ``optimizer``: the first epoch to run,
    the best epoch so far and the loss curve. A checkpoint of another run or of wrong
    content is one :class:`InputError` naming the file (exit 2), like an unreadable one."""
    if state is None:
        return 0, {"score": float("inf"), "epoch": -1, "model": None}, []
    problem = _checkpoint_problem(state, model, epochs)
    if problem is None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as error:
            problem = f"its state does not load ({type(error).__name__})"
        else:
            if not all(v.shape == param.shape for param, values in optimizer.state.items()
                       for v in values.values() if isinstance(v, torch.Tensor) and v.dim()):
                problem = "its optimizer state is not that of this run's model"
    if problem is not None:
        raise InputError(f"checkpoint {path} cannot be resumed: {problem}; delete it to "
                         "restart that run")
    best = {"score": float(state["best_score"]), "epoch": state["best_epoch"],
            "model": state["best_model"]}
    return state["epoch"] + 1, best, [float(v) for v in state["steps"]]


def save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        torch.save(state, temporary)


def train_loop(
    model: nn.Module,
    method: Method,
    train_set: Dataset,
    val_set: Dataset,
    coding: TargetCoding,
    recipe: TrainRecipe,
    seed: int,
    device: torch.device,
    checkpoint: Path | None = None,
    weights: np.ndarray | None = None,
    ranks: Ranks = Ranks(),
    progress: bool = True,
    description: str = "",
    on_epoch: Callable[[int, float], None] | None = None,
    on_step: Callable[[], None] | None = None,
    workers: int = 0,
    orders: list[np.ndarray] | None = None,
    targets: SampleTargets | None = None,
    score: Callable[[nn.Module], float] | None = None,
    mixed_precision: bool = True,
) -> dict:
    """Train ``model`` in place under ``method``'s objective and load its best validation
    epoch. ``weights`` are per training sample (a weighting method). ``orders`` (one
    permutation of the training samples per epoch) replace the sampler's shuffle;
    ``targets`` replace the coding of the batch's targets; ``score(model)`` replaces
    :func:`validation_score`; ``mixed_precision=False`` keeps float32 on CUDA. Returns the
    best epoch, its validation score, the loss of every step (the mean over all ranks) and
    the last epoch's mean step loss."""
    per_pixel = len(train_set) > 0 and train_set[0][1].dim() > 0
    if method.regression.batch_value is not None and per_pixel:
        raise ConfigError(f"method {method.name} couples every sample of a batch; per-pixel "
                          "batches are too large for it")
    if weights is not None and per_pixel:
        raise ConfigError(f"method {method.name} weights samples; per-pixel weights are not "
                          "supported")
    if (orders is not None or targets is not None) and (per_pixel or ranks.world > 1):
        raise ConfigError("given batch orders and sample targets are for one process on "
                          "per-sample targets")
    if orders is not None and len(orders) != recipe.epochs:
        raise ConfigError(f"{len(orders)} batch orders for {recipe.epochs} epochs")
    if recipe.batch_size % ranks.world:
        raise ConfigError(f"batch size {recipe.batch_size} does not split over "
                          f"{ranks.world} processes")
    model.to(device)
    optimizer = make_optimizer(model, recipe)
    trained = nn.parallel.DistributedDataParallel(model) if ranks.world > 1 else model
    weights_t = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)
    indexed = Indexed(train_set)
    if orders is None:
        sampler = DistributedSampler(indexed, num_replicas=ranks.world, rank=ranks.rank,
                                     shuffle=True, seed=seed)
        batching = dict(batch_size=recipe.batch_size // ranks.world, sampler=sampler)
    else:
        sampler = OrderedBatches(orders, recipe.batch_size)
        batching = dict(batch_sampler=sampler)
    loader = DataLoader(indexed, num_workers=workers, pin_memory=device.type == "cuda",
                        persistent_workers=False, **batching)
    has_classes = method.head is not None
    autocast = mixed_precision and device.type == "cuda"
    if score is None:
        def score(trained_model: nn.Module) -> float:
            return validation_score(trained_model, val_set, method, coding, device,
                                    recipe.batch_size, workers, mixed_precision)

    start, best, steps = resume(load_checkpoint(checkpoint), checkpoint, model, optimizer,
                                recipe.epochs)

    bar = tqdm(total=(recipe.epochs - start) * len(train_set), unit="img",
               unit_scale=True, desc=description, file=sys.stderr,
               disable=not (progress and ranks.main) or start >= recipe.epochs)
    epoch_loss = float("nan")
    try:
        for epoch in range(start, recipe.epochs):
            with seeded(epoch_seed(seed, epoch)):
                sampler.set_epoch(epoch)
                trained.train()
                try:
                    for index, x, y in loader:
                        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                            prediction, logits = trained(x)
                        valid = valid_targets(y)
                        prediction, logits = flat_outputs(prediction, logits, valid)
                        if targets is None:
                            target = y[valid]
                            scaled = coding.scaled(target)
                            labels = coding.labels(target) if has_classes else None
                        else:
                            scaled = targets.scaled[index].to(device)
                            labels = targets.labels[index].to(device) if has_classes else None
                        loss = method.objective(
                            prediction, scaled, logits if has_classes else None, labels,
                            weights=None if weights_t is None else weights_t[index].to(device))
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        optimizer.step()
                        step_loss = loss.detach()
                        if ranks.world > 1:
                            dist.all_reduce(step_loss)
                            step_loss /= ranks.world
                        steps.append(float(step_loss))
                        bar.update(x.shape[0] * ranks.world)
                        if on_step is not None:
                            on_step()
                except (RuntimeError, InputError) as error:
                    raise unwrap_loader_error(error) from None
                epoch_loss = mean_in_order(steps[len(steps) - len(loader):])
                if not np.isfinite(epoch_loss):
                    raise RunError(f"training diverged at epoch {epoch} (loss {epoch_loss}); "
                                   "lower the learning rate or lambda")
                val = score(model)
            if val < best["score"]:
                best = {"score": val, "epoch": epoch, "model": copy.deepcopy(model.state_dict())}
            if checkpoint is not None and ranks.main:
                save_checkpoint(checkpoint, {
                    "epoch": epoch, "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(), "steps": steps,
                    "best_score": best["score"], "best_epoch": best["epoch"],
                    "best_model": best["model"]})
            if on_epoch is not None:
                on_epoch(epoch, val)
    finally:
        bar.close()  # ends its line, so an error message starts on its own
    if best["model"] is None:
        raise RunError("training produced no finite validation score; "
                       "lower the learning rate or lambda")
    model.load_state_dict(best["model"])
    return {"best_epoch": best["epoch"], "val_score": best["score"], "steps": steps,
            "last_train_loss": epoch_loss}
