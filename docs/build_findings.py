"""Render every findings block of README.md and docs/*.md from the committed stores.

    python docs/build_findings.py           # rewrite the documents
    python docs/build_findings.py --check   # exit 1 if a document disagrees with its stores

The blocks and how each is computed: clsreg/paper_figures/findings.py.
"""

from __future__ import annotations

import sys

from clsreg.paper_figures.findings import DOCUMENTS, ROOT, render_document


def main(check: bool) -> int:
    cache: dict[str, str] = {}
    stale = []
    for name in DOCUMENTS:
        path = ROOT / name
        text = path.read_text()
        rendered = render_document(text, cache)
        if rendered != text:
            stale.append(name)
            if not check:
                path.write_text(rendered)
    verb = "disagree with their stores" if check else "rewritten"
    print(f"{verb}: {', '.join(stale)}" if stale else "every findings block is up to date")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
