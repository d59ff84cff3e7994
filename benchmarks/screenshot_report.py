"""Open a clsreg report in headless Chromium, check its sections and figures, screenshot it.

Usage: python benchmarks/screenshot_report.py runs/reproduce/report.html \
           [--out docs/report_screenshot.png] [--height 2400]

Needs Debian's ``chromium`` package. Prints one JSON line: the sections and figures Chromium
rendered, what is missing, and the screenshot's path; exits 1 if anything is missing.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

SECTIONS = ("answer", "theory", "table_simulate", "table_simulate_wd0", "table_theory_check",
            "table_realdata", "figures", "provenance")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--allow-file-access-from-files"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/report_screenshot.png"))
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("Error: chromium is not installed (apt-get install chromium)")
    url = args.report.resolve().as_uri()
    dom = subprocess.run([browser, *FLAGS, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    sections = re.findall(r'<section id="([^"]+)"', dom)
    captions = re.findall(r"<figcaption>([^<]+)</figcaption>", dom)
    images = len(re.findall(r'<img [^>]*src="data:image/png;base64,', dom))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([browser, *FLAGS, f"--window-size=1200,{args.height}",
                    f"--screenshot={args.out.resolve()}", url], capture_output=True,
                   timeout=120, check=True)
    missing = [s for s in SECTIONS if s not in sections]
    print(json.dumps({"sections": sections, "figures": captions, "images": images,
                      "missing_sections": missing, "screenshot": str(args.out),
                      "screenshot_bytes": args.out.stat().st_size}))
    if missing or not captions:
        sys.exit(1)


if __name__ == "__main__":
    main()
