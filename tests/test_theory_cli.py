"""`clsreg theory ...` and `clsreg figures theory`: outputs, the 5% check, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from clsreg.analysis.theory_symbolic import closed_forms, derive, format_derivation
from clsreg.cli import cli
from scipy import integrate


def _run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_symbolic_checks_and_printing():
    derivation = derive()
    assert all(derivation.checks.values()) and len(derivation.checks) == 4
    text = format_derivation(derivation)
    assert "Phi(" in text and "phi(" in text and "class_gap" in text and "gaussian" in text
    assert "erf" not in text and "Abs" not in text
    assert "\\Phi{" in format_derivation(derivation, latex=True)
    result = _run("theory", "derive", "--latex")
    assert result.exit_code == 0 and "\\frac" in result.output


def test_readable_forms_equal_the_closed_forms():
    # The Φ/φ forms printed for readers are the lambdified erf forms, at random points.
    import sympy as sp
    from clsreg.analysis.theory_symbolic import ARGUMENTS, readable_forms
    from scipy import special, stats

    derivation = derive()
    rng = np.random.default_rng(4)
    point = {"t": 0.3, "y": 0.45, "e0": 0.2, "e1": 0.5, "sigma": 0.15, "a": 0.0, "b": 1.0,
             "l": 0.35, "u": 0.6, "pi_w": 0.8, "m": 0.4, "s": 0.2}
    modules = [{"Phi": special.ndtr, "phi": stats.norm.pdf, "erf": special.erf}, "numpy"]
    for family, forms in readable_forms().items():
        symbols = [derivation.symbols[n] for n in ARGUMENTS[family]]
        for name, expr in forms.items():
            for _ in range(3):
                values = [point[n] + 0.05 * rng.normal() * (n not in ("a", "b"))
                          for n in ARGUMENTS[family]]
                values[ARGUMENTS[family].index("sigma")] = abs(values[4])
                shown = sp.lambdify(symbols, expr, modules=modules)(*values)
                closed = sp.lambdify(symbols, derivation.forms[family][name],
                                     modules=modules)(*values)
                assert shown == pytest.approx(closed, rel=1e-9, abs=1e-12), (family, name)


def test_gap_on_a_million_mixture_samples_is_within_five_percent(tmp_path):
    rng = np.random.default_rng(0)
    n, pi, a, b, left, right = 1_000_000, 0.9, 0.0, 2.0, 0.6, 0.8
    values = np.where(rng.random(n) < pi, rng.uniform(left, right, n), rng.uniform(a, b, n))
    path = tmp_path / "targets.csv"
    pd.DataFrame({"age": values}).to_csv(path, index=False)
    result = _run("theory", "gap", "--samples", str(path), "--column", "age",
                  "--range", "0", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) >= {"n", "range", "sigma", "imbalance_ratio", "expected_gap",
                           "excess_mse", "captured_fraction", "recommended_num_classes",
                           "recommended_binning"}
    assert report["n"] == n and report["range"] == [0.0, 2.0]
    sigma = report["sigma"]
    assert sigma == pytest.approx(0.075 * 2.0)
    forms = closed_forms()
    params = dict(sigma=sigma, a=a, b=b, l=left, u=right, pi_w=pi)

    def integrand(t):
        shift = (forms("mixture", "bayes_mean", t=t, **params)
                 - forms("mixture", "balanced_mean", t=t, **params))
        return float(shift ** 2) / (b - a)

    closed = integrate.quad(integrand, a, b, points=[left, right], limit=400)[0]
    assert report["excess_mse"] == pytest.approx(closed, rel=0.05)
    assert report["recommended_binning"] in ("uniform", "equal")
    assert 0.0 < report["captured_fraction"] <= 1.0
    # Uniform targets: no excess, so the theory predicts no change at all.
    pd.DataFrame({"age": rng.uniform(0, 2, 50_000)}).to_csv(path, index=False)
    text = _run("theory", "gap", "--samples", str(path), "--column", "age", "--sigma", "0.1",
                "--json")
    assert text.exit_code == 0
    uniform = json.loads(text.output)
    assert uniform["excess_mse"] < 1e-4 * 0.1 ** 2 and abs(uniform["predicted_rel_change"]) < 1e-4


@pytest.mark.parametrize("content,extra,message", [
    ("age\n", (), "empty"),
    ("age\n3\n3\n3\n", (), "constant"),
    ("age\n1\nabc\n2\n", (), "non-numeric"),
    ("age\n1\n\n2\nnan\n", (), "NaN"),
    ("age\n1\n2\n3\n", ("--range", "0", "2"), "outside the range"),
    ("age\n1\n2\n3\n", ("--sigma", "0"), "sigma must be positive"),
    ("age\n1\n2\n3\n", ("--sigma", "-1"), "sigma must be positive"),
    ("age\n1\n2\n3\n", ("--range", "5", "1"), "A < B"),
    ("x\n1\n2\n", (), "not in"),
])
def test_gap_bad_input_gives_one_line_and_nonzero_exit(tmp_path, content, extra, message):
    path = tmp_path / "t.csv"
    path.write_text(content)
    result = CliRunner().invoke(cli, ["theory", "gap", "--samples", str(path), "--column",
                                      "age", *extra])
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0]


def test_gap_missing_file_and_empty_file(tmp_path):
    for path in (tmp_path / "none.csv", tmp_path / "empty.csv"):
        if path.name == "empty.csv":
            path.write_text("")
        result = CliRunner().invoke(cli, ["theory", "gap", "--samples", str(path),
                                          "--column", "age"])
        assert result.exit_code == 2 and result.output.startswith("Error:")
        assert "Traceback" not in result.output


def test_predict_small_preset_writes_predictions(tmp_path):
    result = _run("theory", "predict", "--preset", "small", "--out", str(tmp_path),
                  "--workers", "1")
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "predictions.csv")
    for column in ("setting", "sampling", "function", "data_seed", "num_classes", "binning",
                   "excess_mse", "captured_fraction"):
        assert column in frame.columns
    assert len(frame) == 2 * 4 * 2 * 1 * 2 * 2
    uniform = frame[frame["sampling"] == "uniform"]
    assert (uniform["excess_mse"] == 0).all()
    severe = frame[(frame["sampling"] == "severe")]
    assert (severe["excess_mse"] > 0).all()
    sens = pd.read_csv(tmp_path / "sigma_sensitivity.csv")
    assert sorted(sens["sigma_fraction"].unique()) == [0.02, 0.0375, 0.075, 0.15, 0.3]
