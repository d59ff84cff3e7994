"""Wall time of the theory commands (the issue asks for < 60 s each on the build machine).

Run: python benchmarks/theory_timing.py [--workers 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time


def _time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    clsreg = [sys.executable, "-m", "clsreg"]
    with tempfile.TemporaryDirectory() as out:
        print(f"theory derive:                {_time(clsreg + ['theory', 'derive']):6.1f} s")
        predict = clsreg + ["theory", "predict", "--preset", "paper", "--out", out,
                            "--workers", str(args.workers)]
        print(f"theory predict --preset paper: {_time(predict):6.1f} s")


if __name__ == "__main__":
    main()
