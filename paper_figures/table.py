"""A table as the report shows it: a title, column names, formatted cells and a note.

Table modules (``table_*.py``) build one from stored results; the Markdown report prints
:meth:`Table.markdown` and the HTML template walks the same cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clsreg.analysis.files import write_text_atomic


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""

    def markdown(self) -> str:
        from tabulate import tabulate

        text = tabulate(self.rows, headers=self.columns, tablefmt="github",
                        disable_numparse=True)
        return text + (f"\n\n{self.note}" if self.note else "")

    def write(self, out: Path) -> list[Path]:
        """``out/NAME.md`` with the title as its heading."""
        path = Path(out) / f"{self.name}.md"
        write_text_atomic(path, f"## {self.title}\n\n{self.markdown()}\n")
        return [path]


def percent(value: float) -> str:
    return "–" if value != value else f"{100 * value:+.1f}%"


def interval(low: float, high: float) -> str:
    return "–" if low != low or high != high else f"[{100 * low:+.1f}, {100 * high:+.1f}]%"


def number(value: float, digits: int = 4) -> str:
    return "–" if value != value else f"{value:.{digits}g}"


def p_value(value: float) -> str:
    return "–" if value != value else f"{value:.2g}"
