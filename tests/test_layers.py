"""The package's layers: each module imports only from its own layer or the ones below.

analysis (the math; no torch) ← core (training core) ← simulate ← realdata ← paper_figures ← cli.
Every import statement counts, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("analysis", "core", "simulate", "realdata", "paper_figures", "cli")


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "clsreg" or len(parts) < 2:
        return None
    top = parts[1]
    return LAYERS.index(top) if top in LAYERS else None


def imported_modules(source: str, package: str) -> list[str]:
    """Absolute names of everything ``source`` (a module of ``package``) imports."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "" if node.level == 0 else
                         ".".join(["clsreg", package, *([node.module] if node.module else [])]))
    return names


def upward_imports(source: str, layer: str) -> list[str]:
    """The imports of a module of ``layer`` that reach a layer above it."""
    own = LAYERS.index(layer)
    return [name for name in imported_modules(source, layer)
            if (rank := layer_of(name)) is not None and rank > own]


def _modules():
    for layer in LAYERS[:-1]:
        for path in sorted((ROOT / layer).glob("*.py")):
            yield layer, path
    yield "cli", ROOT / "cli.py"


def test_no_module_imports_from_a_layer_above_it():
    found = {f"{path.relative_to(ROOT)} imports {name}"
             for layer, path in _modules() for name in upward_imports(path.read_text(), layer)}
    assert not found, "\n".join(sorted(found))


def test_analysis_needs_no_torch():
    for path in sorted((ROOT / "analysis").glob("*.py")):
        assert "torch" not in {n.split(".")[0] for n in imported_modules(path.read_text(),
                                                                         "analysis")}, path


def test_the_check_catches_an_upward_import():
    source = ("import numpy\nfrom clsreg.simulate.grid import Run\n\ndef f():\n"
              "    import clsreg.realdata.report\n")
    assert upward_imports(source, "simulate") == ["clsreg.realdata.report"]
    assert upward_imports("from .report import x\n", "realdata") == []
    assert upward_imports("from clsreg.paper_figures import style\n", "realdata") == [
        "clsreg.paper_figures"]
    assert len(list(_modules())) > 30  # the walk sees the whole package


def test_realdata_reaches_simulate_only_to_join_the_theory():
    """The shared training core lives in core/; real data imports the 1D study only where
    the theory's calibration joins real and 1D stores."""
    pairs = {(path.name, name.split(".")[2])
             for path in sorted((ROOT / "realdata").glob("*.py"))
             for name in imported_modules(path.read_text(), "realdata")
             if name.startswith("clsreg.simulate.")}
    assert pairs == {("calibration.py", "report"), ("calibration.py", "theory_link")}


def test_the_command_line_stays_thin():
    """cli.py parses, calls and prints: under 600 lines, no pandas, and no literal list of
    choices (every choice comes from a registry or the vocabulary)."""
    source = (ROOT / "cli.py").read_text()
    assert len(source.splitlines()) < 600
    assert "pandas" not in {n.split(".")[0] for n in imported_modules(source, "cli")}
    literal = [node.lineno for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "Choice"
               and node.args and isinstance(node.args[0], (ast.List, ast.Tuple))
               and all(isinstance(e, ast.Constant) for e in node.args[0].elts)]
    assert not literal, f"literal choice lists in cli.py at lines {literal}"
