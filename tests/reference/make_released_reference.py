"""Rebuild ``released_reference.json``: statistics of datasets written by the study's public
generator (``1d/make_data1d.py`` of github.com/SilviaLauraPintea/reg-cls), which
``tests/test_released.py`` compares with ``--protocol released``.

Run once, from a checkout of that repository (needs numpy and matplotlib, no torch):

    python tests/reference/make_released_reference.py /path/to/reg-cls

Each case replays, with the released functions themselves, what ``write_data`` does for one
(function, seed): Python's ``random.seed(0)`` draws the function parameters, then the
samplings run in the released order (uniform, mild, moderate, severe, each followed by the
three index draws of its plot), so the OOD peak sees the global state it sees in the original.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np

CASES = [  # (setting, sampling, function index, seed index)
    ("clean", "severe", 0, 0),
    ("clean", "uniform", 9, 4),
    ("noisy", "mild", 3, 2),
    ("noisy", "uniform", 1, 1),
    ("ood", "moderate", 2, 3),
    ("ood", "uniform", 0, 0),
]
ORDER = (("uniform", 0.0), ("mild", 0.3), ("moderate", 0.1), ("severe", 0.03))


def split_stats(x: np.ndarray, y: np.ndarray) -> dict:
    """Size, means and rank-weighted checksums of the sorted values (order-free)."""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    weights = np.arange(1, x.size + 1) / x.size
    pairs = np.argsort(x, kind="stable")
    return {"size": int(x.size), "mean_x": float(x.mean()), "mean_y": float(y.mean()),
            "sorted_x_checksum": float(np.sort(x) @ weights),
            "sorted_y_checksum": float(np.sort(y) @ weights),
            "y_by_x_checksum": float(y[pairs] @ weights)}


def released_case(module, setting: str, sampling: str, function: int, seed_index: int) -> dict:
    sampler = {"clean": module.sample_clean, "noisy": module.sample_noisey,
               "ood": module.sample_ood}[setting]
    np.random.seed(0)
    random.seed(0)
    seeds = np.random.randint(0, high=10000, size=(5,))
    for _ in range(function + 1):
        module.A = random.random() * 1.0
        module.B = 1.5 - module.A
        module.C = random.randint(9, 30)
        module.D = module.C // 3
    written = {}
    for case, std in ORDER:
        train, val, test, _ = sampler(std=std, seed=seeds[seed_index], case=case, min_spls=5,
                                      all_samples=60000, max_bins=1024)
        written[case] = (train, val, test)
        for split in (train, val, test):  # what plotdata draws after each dataset
            np.random.randint(0, split["x"].shape[0], 1000)
        if case == sampling:
            break
    train, val, _ = written[sampling]
    test = written["uniform"][2]
    return {"setting": setting, "sampling": sampling, "function": function,
            "seed_index": seed_index, "data_seed": int(seeds[seed_index]),
            "function_params": [module.A, module.B, module.C, module.D],
            "splits": {name: split_stats(s["x"], s["y"])
                       for name, s in (("train", train), ("val", val), ("test", test))}}


def main(repository: Path) -> None:
    sys.path.insert(0, str(repository / "1d"))
    sys.modules["utils"] = type(sys)("utils")  # make_data1d imports it for folder helpers
    sys.modules["utils"].check_rootfolders = lambda *args: None
    import matplotlib

    matplotlib.use("Agg")
    import make_data1d

    cases = [released_case(make_data1d, *case) for case in CASES]
    out = Path(__file__).with_name("released_reference.json")
    out.write_text(json.dumps({"source": "SilviaLauraPintea/reg-cls 1d/make_data1d.py",
                               "cases": cases}, indent=1) + "\n")
    print(f"wrote {out} ({len(cases)} cases)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
