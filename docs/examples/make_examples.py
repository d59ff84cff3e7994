"""Write the two synthetic example files the README's tour uses (fixed seed, so the files
in the repository are exactly what this script writes).

- targets.csv: 2,000 long-tailed (log-normal) targets, column ``y``, for ``theory gap``;
- table.csv: 2,500 rows of a synthetic pricing table (``id``, ``size``, ``quality``,
  ``kind``, ``price``) for ``realdata run --csv``. Synthetic, not real data.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent

rng = np.random.default_rng(2026)
pd.DataFrame({"y": np.round(rng.lognormal(3.3, 0.45, 2000), 2)}).to_csv(
    HERE / "targets.csv", index=False)
n = 2500
size = rng.uniform(0, 1, n)
quality = rng.normal(size=n)
kind = rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1])
price = np.exp(1.5 + 2.0 * size + 0.3 * quality + np.where(kind == "c", 0.8, 0.0)
               + rng.normal(0, 0.25, n))
pd.DataFrame({"id": np.arange(n), "size": np.round(size, 4), "quality": np.round(quality, 4),
              "kind": kind, "price": np.round(price, 2)}).to_csv(HERE / "table.csv", index=False)
