"""Wall time of the hotel_rates acceptance run (reg vs reg+cls, N seeds) on this machine.

Usage: python benchmarks/realdata_hotel.py [--seeds 3] [--threads 1]
The issue asks for under 10 minutes with 3 seeds on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from clsreg.realdata.sources import make_config, parts_of, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    config = make_config("hotel_rates")
    parts = parts_of(config)
    prepared_at = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        run(config, out, args.seeds, threads=args.threads, progress=False, parts=parts)
    done = time.perf_counter()
    print(f"hotel_rates, {args.seeds} seeds, {args.threads} thread(s): load+split+encode "
          f"{prepared_at - start:.1f} s, training {done - prepared_at:.1f} s, "
          f"total {done - start:.1f} s")


if __name__ == "__main__":
    main()
