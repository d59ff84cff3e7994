"""Throughput of the 1D training engine against one-model-at-a-time baselines.

Everything is measured side by side in one run, on the same work: the paper's architecture
(1 → 6 → 15, regression head, class head of C classes), the protocol's training sets
(N = 20,000, batch 256, last batch dropped) and a subset of the epochs. Three ways to train:

* population: the engine (``simulate.population``), P models in lockstep, float32;
* faithful: one model at a time, a ``DataLoader`` over per-sample items, float64, as the
  original code did (timed on the first ``--faithful-steps`` batches of an epoch);
* strong: one model at a time, float32, batches sliced from pre-built tensors.

Rates are model-epochs per second. The grid's mix (600 plain models and 600 per class count
4 … 1024) turns per-class rates into one rate: total model-epochs over total time. FLOPs count
the matmuls of forward and backward; the peak is a float32 2048² matmul timed in the same run.
Every timing is the best of ``--repeats`` after a warm-up (the machine may be shared).
Prints one JSON line.

    python benchmarks/bench_simulate.py [--device cpu|cuda] [--epochs 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from clsreg.core.device import resolve_device
from clsreg.simulate.grid import expand, load_grid
from clsreg.simulate.population import Architecture, Population, flush_subnormals
from clsreg.simulate.reference import train_single
from clsreg.simulate.sweep import CPU_POPULATION, GPU_POPULATION
from clsreg.simulate.training import DatasetCache, member_for

CLASS_COUNTS = (0, 4, 16, 64, 256, 1024)
GRID_MODELS = {c: 600 for c in CLASS_COUNTS}  # PROTOCOL §2: 600 plain, 600 per class count


def _best(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` calls after one untimed warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def peak_gflops(device: torch.device, repeats: int, size: int = 2048) -> float:
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    inner = 10 if device.type == "cpu" else 100

    def run():
        for _ in range(inner):
            a @ b

    return 2 * size**3 * inner / _best(run, repeats) / 1e9


def members_for(num_classes: int, count: int, cache: DatasetCache):
    """The first ``count`` models of the paper grid with ``num_classes`` classes, and their
    method."""
    runs = [r for r in expand(load_grid("paper"), device="cpu")
            if r.num_classes == num_classes][:count]
    cache.prefetch(runs, os.cpu_count() or 1)
    method = runs[0].method_value()
    return [member_for(r, r.method_value(), cache.get(r))[0] for r in runs], method


def device_agreement(device: torch.device, cache: DatasetCache) -> float:
    """Max relative weight difference after one float64 epoch: population on ``device``
    vs the one-model-at-a-time reference on the CPU (the engine's numbers on a GPU)."""
    architecture = Architecture((6, 15), 64)
    members, method = members_for(64, 3, cache)
    members = [m.trained_with(epochs=1) for m in members]
    on_device = Population(architecture, members, method,
                           dtype="float64", device=str(device)).train()
    worst = 0.0
    for member, params in zip(members, on_device.parameters, strict=True):
        reference = train_single(architecture, member, method, dtype="float64")
        worst = max(worst, max(float(abs(params[k] - reference[k]).max()
                                     / abs(reference[k]).max()) for k in reference))
    return worst


def measure(num_classes: int, size: int, device: torch.device, args, cache: DatasetCache
            ) -> dict[str, float]:
    """Rates of the three ways to train models with ``num_classes`` classes (0: plain)."""
    architecture = Architecture((6, 15), num_classes)
    members, method = members_for(num_classes, size, cache)
    members = [m.trained_with(epochs=args.epochs) for m in members]
    batch_size = members[0].recipe.batch_size
    pop_time = _best(lambda: Population(architecture, members, method,
                                        device=str(device)).train(), args.repeats)
    steps_per_epoch = members[0].x.size // batch_size
    one = members[0].trained_with(epochs=1)
    faithful_time = _best(lambda: train_single(architecture, one, method,
                                               "faithful",
                                               max_steps_per_epoch=args.faithful_steps,
                                               dtype="float64", device=str(device)),
                          args.repeats)
    strong_steps = min(args.strong_steps, steps_per_epoch)
    strong_time = _best(lambda: train_single(architecture, one, method, "strong",
                                             max_steps_per_epoch=strong_steps,
                                             dtype="float32", device=str(device)),
                        args.repeats)
    pop_rate = len(members) * args.epochs / pop_time
    flops_per_epoch = architecture.flops_per_sample() * steps_per_epoch * batch_size
    return {
        "population_model_epochs_per_s": pop_rate,
        "faithful_model_epochs_per_s": args.faithful_steps / steps_per_epoch / faithful_time,
        "strong_model_epochs_per_s": strong_steps / steps_per_epoch / strong_time,
        "population_gflops": pop_rate * flops_per_epoch / 1e9,
        "population_size": len(members),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--population", type=int, default=None,
                        help="models per population (default: the engine's)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per population timing")
    parser.add_argument("--faithful-steps", type=int, default=8,
                        help="batches of one epoch timed for the faithful baseline")
    parser.add_argument("--strong-steps", type=int, default=78,
                        help="batches of one epoch timed for the strong baseline")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--classes", default=",".join(map(str, CLASS_COUNTS)))
    args = parser.parse_args()
    flush_subnormals()  # as the sweep does; applies to all three ways of training alike
    device = resolve_device(args.device)
    size = args.population or (GPU_POPULATION if device.type == "cuda" else CPU_POPULATION)
    classes = [int(c) for c in args.classes.split(",")]
    cache = DatasetCache()
    per_class = {c: measure(c, size, device, args, cache) for c in classes}
    peak = peak_gflops(device, args.repeats)
    agreement = device_agreement(device, cache) if device.type != "cpu" else None

    def mix(key: str) -> float:
        seconds = sum(GRID_MODELS[c] / per_class[c][key] for c in classes)
        return sum(GRID_MODELS[c] for c in classes) / seconds

    population, faithful, strong = (mix(f"{k}_model_epochs_per_s")
                                    for k in ("population", "faithful", "strong"))
    top = max(classes)
    achieved = per_class[top]["population_gflops"]
    grid_minutes = sum(GRID_MODELS[c] * 80 / per_class[c]["population_model_epochs_per_s"]
                       for c in classes) / 60
    print(json.dumps({
        "population_model_epochs_per_s": round(population, 3),
        "faithful_model_epochs_per_s": round(faithful, 4),
        "strong_model_epochs_per_s": round(strong, 3),
        "speedup_vs_faithful": round(population / faithful, 1),
        "speedup_vs_strong": round(population / strong, 2),
        "achieved_gflops": round(achieved, 2),
        "peak_gflops": round(peak, 1),
        "peak_fraction": round(achieved / peak, 3),
        "achieved_at_num_classes": top,
        "projected_grid_minutes": round(grid_minutes, 1),
        "classes": classes,
        "by_classes": {str(c): {k: round(v, 4) for k, v in d.items()}
                       for c, d in per_class.items()},
        "device": device.type if device.type == "cpu" else torch.cuda.get_device_name(),
        "threads": torch.get_num_threads(),
        "epochs_timed": args.epochs,
        "repeats": args.repeats,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "device_vs_cpu_reference_max_rel_err": agreement,
    }))


if __name__ == "__main__":
    main()
