"""Coverage of the seed-level interval (analysis/inference.py) on skewed per-unit changes:
the numbers docs/statistics.md quotes. One JSON line per (spread, units).

Run: PYTHONPATH=... python benchmarks/coverage.py [--replications 20000]
"""

from __future__ import annotations

import argparse
import json

from clsreg.analysis.inference import simulate_coverage


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replications", type=int, default=20_000)
    parser.add_argument("--bootstrap-replications", type=int, default=4_000)
    args = parser.parse_args()
    for change_sigma in (0.1, 0.3, 0.5):
        for n_units in (5, 10, 20):
            result = simulate_coverage(n_units, args.replications, args.bootstrap_replications,
                                       seed=0, change_sigma=change_sigma)
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                              for k, v in result.items()}), flush=True)


if __name__ == "__main__":
    main()
