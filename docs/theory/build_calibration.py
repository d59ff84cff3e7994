"""Rebuild the calibration of `clsreg theory gap` and its validation (docs/theory.md).

    python docs/theory/build_calibration.py                # ~10 min on 2 CPU cores
    python docs/theory/build_calibration.py --runs runs/calib --sim results/paper_h200
    python docs/theory/build_calibration.py --from-points  # the report only, no training

Trains what `--runs` does not hold yet (`realdata run`, 10 seeds, on 14 tables and the
diamonds imbalance series; an interrupted build resumes), then writes every point to
analysis/data/gap_calibration.csv (what `theory gap` fits its verdict to) and prints the
validation table and scores. `--from-points` trains nothing: it reads the committed points
(`--out`) and rewrites only the report (fits, leave-one-table-out power, verdicts, scores).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from clsreg.analysis.files import write_text_atomic
from clsreg.analysis.theory_calibration import (
    CALIBRATION_FILE,
    evaluate,
    format_calibration_report,
    write_points,
)
from clsreg.realdata.calibration import SEEDS, build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/calib"),
                        help="folder of the realdata stores (created, resumed)")
    parser.add_argument("--sim", type=Path, default=Path("results/paper_h200"),
                        help="the paper grid's 1D store")
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--binning", choices=("uniform", "equal"), default="uniform",
                        help="reg+cls's class binning on the tables (equal: a variant kept "
                             "apart from the calibration theory gap uses)")
    parser.add_argument("--out", type=Path, default=CALIBRATION_FILE)
    parser.add_argument("--report", type=Path,
                        default=Path(__file__).parent / "calibration_report.md")
    parser.add_argument("--from-points", action="store_true",
                        help="train nothing: rebuild the report from the points in --out")
    args = parser.parse_args()
    if args.from_points:
        frame = pd.read_csv(args.out)
    else:
        frame = build(args.runs, args.sim, args.seeds, binning=args.binning)
        write_points(frame, args.out)
    report = format_calibration_report(*evaluate(frame))
    write_text_atomic(args.report, report)
    print(report)
    print(f"-> {args.report}")
    if not args.from_points:
        print(f"-> {args.out}")


if __name__ == "__main__":
    main()
