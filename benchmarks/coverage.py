"""Coverage of the seed-level interval (analysis/inference.py) on skewed per-unit changes:
the numbers docs/statistics.md quotes. One JSON line per (spread, units), or with
``--markdown`` the table docs/statistics.md shows (seed 0: the same numbers every run).

Run: PYTHONPATH=... python benchmarks/coverage.py [--markdown] [--replications 20000]
"""

from __future__ import annotations

import argparse
import json

from clsreg.analysis.inference import simulate_coverage

SPREADS = (0.1, 0.3, 0.5)
UNITS = (5, 10, 20)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replications", type=int, default=20_000)
    parser.add_argument("--bootstrap-replications", type=int, default=4_000)
    parser.add_argument("--markdown", action="store_true", help="print the docs' table")
    args = parser.parse_args()
    if args.markdown:
        print("| per-unit change spread σ | units | Fieller (the rule) | delta-method t "
              "| percentile bootstrap |")
        print("|---|---|---|---|---|")
    for change_sigma in SPREADS:
        for n_units in UNITS:
            r = simulate_coverage(n_units, args.replications, args.bootstrap_replications,
                                  seed=0, change_sigma=change_sigma)
            if args.markdown:
                print(f"| {change_sigma} | {n_units} | {r['fieller']:.3f} | "
                      f"{r['delta_method']:.3f} | {r['percentile_bootstrap']:.3f} |", flush=True)
            else:
                print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                                  for k, v in r.items()}), flush=True)


if __name__ == "__main__":
    main()
