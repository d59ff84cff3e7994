"""Train the Breakfast MLP with the benchmark loop; run plainly or under ``torchrun``.

``python ddp_train.py OUT`` (one process) or ``torchrun --nproc-per-node 2 ddp_train.py OUT``
(DistributedDataParallel, gloo); each rank saves its final weights and the step losses to
``OUT/rank{r}.pt``. Used by tests/test_benchmarks.py to compare the two.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from clsreg.analysis.binning import make_edges
from clsreg.core.loop import (
    TargetCoding,
    TargetScaler,
    launched_ranks,
    process_group,
    train_loop,
)
from clsreg.core.methods import get_method
from clsreg.core.recipe import TrainRecipe
from clsreg.realdata.backbones import build_breakfast_model
from torch.utils.data import TensorDataset

ROWS, GLOBAL_BATCH, EPOCHS, CLASSES = 512, 64, 3, 10


def main(out: Path) -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(ROWS, 64)).astype(np.float32)
    y = (1 / (1 + np.exp(-x[:, :4].sum(axis=1)))).astype(np.float32)
    data = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    coding = TargetCoding(TargetScaler.fit(y, log=False), make_edges(y, CLASSES, "equal"))
    method = get_method("regcls").configured(num_classes=CLASSES, binning="equal", lam=1.0)
    ranks = launched_ranks()
    device = torch.device("cpu")
    with process_group(ranks, device):
        model = build_breakfast_model(CLASSES, seed=3)
        info = train_loop(model, method, data, data, coding,
                          TrainRecipe(lr=1e-3, epochs=EPOCHS, batch_size=GLOBAL_BATCH),
                          seed=3, device=device, ranks=ranks, progress=False)
    torch.save({"steps": info["steps"], "state": model.state_dict(), "world": ranks.world},
               out / f"rank{ranks.rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
