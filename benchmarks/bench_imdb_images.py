"""Throughput and memory of the IMDB-WIKI-DIR path: ResNet-50 reg+cls on 224 px images.

The prepared GPU check of the image benchmarks: it writes an IMDB-WIKI-DIR fixture of 224 px
JPEGs in the published format (``clsreg realdata make-fixture``'s writer) if the folder has
none, then trains reg and reg+cls with the benchmark loop (DataLoader workers, bf16 autocast
on CUDA) for ``--steps`` optimizer steps each and measures images/s (after ``--warmup``
steps) and the peak GPU memory. Both methods are timed side by side in one run; their ratio
is the class head's cost. Prints one JSON line, and with ``--figure`` a bar chart of both.

    python benchmarks/bench_imdb_images.py --device cuda --steps 300 \\
        --figure docs/realdata_fig/imdb_gpu.png
    python benchmarks/bench_imdb_images.py --device cpu --steps 4 --batch-size 8   # a smoke check
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from clsreg.core.device import resolve_device
from clsreg.core.loop import train_loop
from clsreg.core.recipe import TrainRecipe
from clsreg.realdata.agedir import make_age_fixture
from clsreg.realdata.sources import make_config, parts_of


class Repeated(torch.utils.data.Dataset):
    """``dataset`` cycled to ``length`` items: as many steps as asked of a small fixture."""

    def __init__(self, dataset, length: int):
        self.dataset, self.length = dataset, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        return self.dataset[index % len(self.dataset)]


def timed_training(task, config, name: str, recipe: TrainRecipe, workers: int,
                   device: torch.device, steps: int, warmup: int) -> dict:
    """Train ``steps`` steps of method ``name`` (one epoch over a ``steps``-batch subset);
    images/s over the steps after ``warmup``."""
    method = config.method(name)
    model = task.build(config.num_classes if method.head is not None else 0, 0)
    stamps: list[float] = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    info = train_loop(model, method, Repeated(task.train, steps * recipe.batch_size), task.val,
                      task.coding, recipe, seed=0, device=device, progress=True, description=name,
                      workers=workers,
                      on_step=lambda: stamps.append(_now(device)))
    total = time.perf_counter() - start
    timed = np.diff(stamps[warmup - 1:]) if len(stamps) > warmup else np.array([total])
    return {"images_per_s": round(recipe.batch_size / float(np.median(timed)), 2),
            "steps": len(info["steps"]), "wall_s": round(total, 2),
            "peak_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
            if device.type == "cuda" else None}


def _now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-dir", default="runs/imdb_fixture_224")
    parser.add_argument("--images", type=int, default=512, help="training images to write")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--figure", default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    data = Path(args.data_dir)
    if not (data / "imdb_wiki.csv").exists():
        make_age_fixture(data, "imdb-wiki-dir", per_split=(args.images, 64, 64), size=224)
    config = make_config("imdb-wiki-dir", epochs=1, batch_size=args.batch_size, data_dir=data)
    task = parts_of(config)[0].tasks[0]
    recipe = replace(config.recipe, epochs=1)
    warmup = min(args.warmup, max(args.steps - 2, 1))
    results = {name: timed_training(task, config, name, recipe, args.workers, device,
                                     args.steps, warmup)
               for name in ("reg", "regcls")}
    line = {"device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "torch": torch.__version__, "image_size": 224, "batch_size": args.batch_size,
            "amp": "bf16" if device.type == "cuda" else "off", "workers": args.workers,
            **{f"{name}_{key}": value for name, r in results.items() for key, value in r.items()},
            "regcls_over_reg_throughput": round(results["regcls"]["images_per_s"]
                                                / results["reg"]["images_per_s"], 3)}
    print(json.dumps(line))
    if args.figure:
        from clsreg.paper_figures.style import plt, save_figure
        figure, (left, right) = plt.subplots(1, 2, figsize=(6.4, 2.6))
        names = list(results)
        left.bar(names, [results[n]["images_per_s"] for n in names], color="#4c72b0")
        left.set_ylabel("images / s")
        right.bar(names, [results[n]["peak_memory_gib"] or 0 for n in names], color="#c44e52")
        right.set_ylabel("peak GPU memory (GiB)")
        figure.suptitle(f"IMDB-WIKI-DIR path, ResNet-50, 224 px, batch {args.batch_size}, "
                        f"{line['amp']} ({line['gpu'] or device})", fontsize=9)
        save_figure(figure, Path(args.figure).with_suffix(""), ("png",))


if __name__ == "__main__":
    main()
