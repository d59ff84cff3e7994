"""Rebuild ``study_logs.csv``: the study's own 1D results, per cell, from the logs it
released (``1d/logs/{clean,noisey_0.1,ood}/test_lambda_*.pkl`` of
github.com/SilviaLauraPintea/reg-cls), with the same statistics as ``clsreg simulate report``.

    python docs/fidelity/study_logs.py /path/to/reg-cls

Each log is a sequence of pickled dicts, one per (sampling, function, seed, class count);
``val_reg_mse`` / ``val_regcls_mse`` hold the *test* MSEs (the released ``train_eval.py``
stores its final test evaluation under the ``val_`` keys). These numbers come from the
authors' runs; the released code cannot regenerate them exactly (docs/fidelity.md).
"""

from __future__ import annotations

import csv
import pickle
import sys
from pathlib import Path

import numpy as np
from clsreg.simulate.report import STAT_COLUMNS, decide, stat_row

LOGS = {"clean": "clean/test_lambda_1e+2.pkl", "noisy": "noisey_0.1/test_lambda_1e+3.pkl",
        "ood": "ood/test_lambda_1e+4.pkl"}
COLUMNS = ("setting", "sampling", "num_classes", "mse_reg", "mse_regcls", *STAT_COLUMNS)


def read_log(path: Path) -> list[dict]:
    rows = []
    with open(path, "rb") as handle:
        while True:
            try:
                rows.append(pickle.load(handle))
            except EOFError:
                return rows


def main(repository: Path) -> None:
    out = []
    for setting, relative in LOGS.items():
        cells: dict[tuple, list] = {}
        for row in read_log(repository / "1d" / "logs" / relative):
            sampling = row["name"].split("_")[0]
            cells.setdefault((sampling, row["cls"]), []).append(
                (row["val_reg_mse"], row["val_regcls_mse"], row["seed"]))
        for sampling in ("uniform", "mild", "moderate", "severe"):
            for num_classes in sorted(c for s, c in cells if s == sampling):
                values = np.array(cells[(sampling, num_classes)], dtype=np.float64)
                row = {"setting": setting, "sampling": sampling, "num_classes": num_classes}
                row.update(stat_row(values[:, 0], values[:, 1], values[:, 2].astype(int),
                                    mse_names=("mse_reg", "mse_regcls")))
                out.append(row)
    decide(out, lambda row: "the study's logs: reg+cls vs reg")
    target = Path(__file__).with_name("study_logs.csv")
    with open(target, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in out:
            writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v
                             for k, v in row.items()})
    print(f"wrote {target} ({len(out)} cells)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
