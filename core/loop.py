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
* Determinism: every epoch reseeds torch from ``(seed, epoch)`` before its loader starts, so
  shuffling, augmentation and worker seeds depend on the seed and epoch alone, and a run
  resumed from its checkpoint ends with the weights of an uninterrupted one.
* Checkpoints: after every epoch, atomically, model, optimizer, best weights and the loss
  curve; a rerun continues after the last finished epoch.
* Mixed precision: bfloat16 autocast on CUDA (no loss scaling needed); float32 on the CPU.
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
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
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
                    ) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """``(indices, prediction in target units, target)`` per batch of ``dataset``, in order."""
    model.eval()
    loader = DataLoader(Indexed(dataset), batch_size=batch_size, shuffle=False,
                        num_workers=workers, pin_memory=device.type == "cuda")
    centres = coding.centres(device) if method.predicts_from_classes else None
    try:
        for index, x, y in loader:
            with torch.autocast(device.type, dtype=torch.bfloat16,
                                enabled=device.type == "cuda"):
                prediction, logits = model(x.to(device, non_blocking=True))
            scaled = model_prediction(prediction, logits, method, centres)
            yield (index.numpy(), scaled * coding.scaler.std + coding.scaler.mean,
                   y.to(device))
    except (RuntimeError, InputError) as error:
        raise unwrap_loader_error(error) from None


def validation_score(model: nn.Module, dataset: Dataset, method: Method, coding: TargetCoding,
                     device: torch.device, batch_size: int, workers: int = 0) -> float:
    """The method's regression loss on the validation split, in the target's units, pooled
    over its valid samples (pixels)."""
    total, count = 0.0, 0
    for _, prediction, y in predict_batches(model, dataset, method, coding, device,
                                            batch_size, workers):
        valid = valid_targets(y)
        terms = method.regression.per_sample(prediction[valid].double() - y[valid].double())
        total += float(terms.sum())
        count += int(valid.sum())
    return total / count if count else float("nan")


def load_checkpoint(path: Path | None) -> dict | None:
    if path is None or not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file
        raise InputError(f"checkpoint {path} cannot be read ({type(error).__name__}); "
                         "delete it to restart that run") from None


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
) -> dict:
    """Train ``model`` in place under ``method``'s objective and load its best validation
    epoch. ``weights`` are per training sample (a weighting method). Returns the best epoch,
    its validation score, and the loss of every step (the mean over all ranks)."""
    per_pixel = len(train_set) > 0 and train_set[0][1].dim() > 0
    if method.regression.batch_value is not None and per_pixel:
        raise ConfigError(f"method {method.name} couples every sample of a batch; per-pixel "
                          "batches are too large for it")
    if weights is not None and per_pixel:
        raise ConfigError(f"method {method.name} weights samples; per-pixel weights are not "
                          "supported")
    if recipe.batch_size % ranks.world:
        raise ConfigError(f"batch size {recipe.batch_size} does not split over "
                          f"{ranks.world} processes")
    model.to(device)
    optimizer = make_optimizer(model, recipe)
    trained = nn.parallel.DistributedDataParallel(model) if ranks.world > 1 else model
    weights_t = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)
    indexed = Indexed(train_set)
    sampler = DistributedSampler(indexed, num_replicas=ranks.world, rank=ranks.rank,
                                 shuffle=True, seed=seed)
    loader = DataLoader(indexed, batch_size=recipe.batch_size // ranks.world,
                        sampler=sampler, num_workers=workers,
                        pin_memory=device.type == "cuda",
                        persistent_workers=False)
    has_classes = method.head is not None
    autocast = device.type == "cuda"

    state = load_checkpoint(checkpoint)
    start, best, steps = 0, {"score": float("inf"), "epoch": -1, "model": None}, []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, steps = int(state["epoch"]) + 1, list(state["steps"])
        best = {"score": float(state["best_score"]), "epoch": int(state["best_epoch"]),
                "model": state["best_model"]}

    bar = tqdm(total=(recipe.epochs - start) * len(sampler) * ranks.world, unit="img",
               unit_scale=True, desc=description, file=sys.stderr,
               disable=not (progress and ranks.main) or start >= recipe.epochs)
    for epoch in range(start, recipe.epochs):
        torch.manual_seed(epoch_seed(seed, epoch))
        sampler.set_epoch(epoch)
        trained.train()
        try:
            for index, x, y in loader:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                    prediction, logits = trained(x)
                valid = valid_targets(y)
                prediction, logits = flat_outputs(prediction, logits, valid)
                target = y[valid]
                loss = method.objective(
                    prediction, coding.scaled(target), logits if has_classes else None,
                    coding.labels(target) if has_classes else None,
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
        epoch_loss = float(np.mean(steps[-len(loader):])) if len(loader) else float("nan")
        if not np.isfinite(epoch_loss):
            raise RunError(f"training diverged at epoch {epoch} (loss {epoch_loss}); "
                           "lower the learning rate or lambda")
        score = validation_score(model, val_set, method, coding, device, recipe.batch_size,
                                 workers)
        if score < best["score"]:
            best = {"score": score, "epoch": epoch, "model": copy.deepcopy(model.state_dict())}
        if checkpoint is not None and ranks.main:
            save_checkpoint(checkpoint, {
                "epoch": epoch, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "steps": steps,
                "best_score": best["score"], "best_epoch": best["epoch"],
                "best_model": best["model"]})
        if on_epoch is not None:
            on_epoch(epoch, score)
    bar.close()
    if best["model"] is None:
        raise RunError("training produced no finite validation score; "
                       "lower the learning rate or lambda")
    model.load_state_dict(best["model"])
    return {"best_epoch": best["epoch"], "val_score": best["score"], "steps": steps}
