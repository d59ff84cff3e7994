"""Symbolic derivation (sympy) of the gap's closed forms, lambdified to numpy.

Following the relation formalized by Pintea et al. (after Ren et al., Balanced MSE, CVPR
2022): ``p_bal(y|x) = N(y; t, σ²)`` restricted to ``[a, b]``, ``w = p_train / p_bal`` with
``p_bal(y) = 1/(b − a)``, and two training densities with closed forms:

* ``mixture``: the 1D study's sampling, a uniform background on ``[a, b]`` (weight
  ``1 − π``) plus a uniform window ``[l, u] ⊂ [a, b]`` (weight ``π``);
* ``gaussian``: ``N(m, s²)`` restricted to ``[a, b]``.

Every ``y``-integral reduces to the standard normal moments ``P0 = ∫φ`` and ``P1 = ∫zφ``
over ``[α, β]``, which sympy integrates; ``y = t + σz`` maps an interval of ``y`` to one of
``z``. For the Gaussian family the product ``N(y; t, σ²) N(y; m, s²)`` is rewritten as
``N(t; m, σ² + s²) N(y; c, v)`` and the identity is checked symbolically. The lambdified
forms subtract ``erf`` values, so they lose relative accuracy once both ends of an
interval sit deep in the same tail; :mod:`analysis.theory` is the stable evaluation and
these forms are its reference where they are well conditioned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy as sp
from scipy import special

QUANTITIES = ("normalizer", "gap", "bayes_mean", "balanced_mean", "class_prob_bal",
              "class_prob_train", "class_gap")
DESCRIPTIONS = {
    "normalizer": "Z(t) = ∫ p_bal(y|t) w(y) dy",
    "gap": "Δ(t, y) = log w(y) − log Z(t)",
    "bayes_mean": "μ_train(t) = E_train[y | t]",
    "balanced_mean": "μ_bal(t) = E_bal[y | t]",
    "class_prob_bal": "p_bal(c|t) for the bin c = [e0, e1]",
    "class_prob_train": "p_train(c|t) for the bin c = [e0, e1]",
    "class_gap": "Δ_class(t, c) = log p_train(c|t) − log p_bal(c|t)",
}
# Argument order of each family's lambdified functions.
ARGUMENTS = {
    "mixture": ("t", "y", "e0", "e1", "sigma", "a", "b", "l", "u", "pi_w"),
    "gaussian": ("t", "y", "e0", "e1", "sigma", "a", "b", "m", "s"),
}


@dataclass(frozen=True)
class Derivation:
    """The closed forms of both families, their symbols and the symbolic checks passed."""

    symbols: dict[str, sp.Symbol]
    forms: dict[str, dict[str, sp.Expr]]
    checks: dict[str, bool]


def _normal(value: sp.Expr, mean: sp.Expr, std: sp.Expr) -> sp.Expr:
    return sp.exp(-(value - mean) ** 2 / (2 * std ** 2)) / (sp.sqrt(2 * sp.pi) * std)


@cache
def derive() -> Derivation:
    """Derive (1)–(3) of PROTOCOL §1 for both families; raise if a symbolic check fails."""
    t, y, z, e0, e1, alpha, beta = sp.symbols("t y z e0 e1 alpha beta", real=True)
    a, b, lo, u, m = sp.symbols("a b l u m", real=True)
    sigma, s = sp.symbols("sigma s", positive=True)
    # The window weight π; named pi_w so that it never prints as (or shadows) the constant.
    pi = sp.Symbol("pi_w", nonnegative=True)
    phi = sp.exp(-z ** 2 / 2) / sp.sqrt(2 * sp.pi)
    P0 = sp.Lambda((alpha, beta), sp.integrate(phi, (z, alpha, beta)))
    P1 = sp.Lambda((alpha, beta), sp.integrate(z * phi, (z, alpha, beta)))

    def kernel_mass(low: sp.Expr, high: sp.Expr) -> sp.Expr:
        """∫_low^high N(y; t, σ²) dy."""
        return P0((low - t) / sigma, (high - t) / sigma)

    def kernel_moment(low: sp.Expr, high: sp.Expr) -> sp.Expr:
        """∫_low^high y N(y; t, σ²) dy = t·P0 + σ·P1 (y = t + σz)."""
        return t * kernel_mass(low, high) + sigma * P1((low - t) / sigma, (high - t) / sigma)

    checks = {
        "d/du ∫_l^u N = N(u)": sp.simplify(sp.diff(kernel_mass(lo, u), u)
                                           - _normal(u, t, sigma)) == 0,
        "d/du ∫_l^u y N = u N(u)": sp.simplify(sp.diff(kernel_moment(lo, u), u)
                                               - u * _normal(u, t, sigma)) == 0,
    }
    total = kernel_mass(a, b)
    balanced_mean = kernel_moment(a, b) / total
    class_prob_bal = kernel_mass(e0, e1) / total

    # (ii) background + window mixture.
    density_in, density_out = (1 - pi) / (b - a) + pi / (u - lo), (1 - pi) / (b - a)
    overlap_low, overlap_high = sp.Max(e0, lo), sp.Min(e1, u)
    window_part = sp.Piecewise((kernel_mass(overlap_low, overlap_high),
                                overlap_low < overlap_high), (0, True))
    train_mass = density_out * total + (pi / (u - lo)) * kernel_mass(lo, u)
    normalizer = (b - a) * train_mass / total
    bin_train = density_out * kernel_mass(e0, e1) + (pi / (u - lo)) * window_part
    mixture = {
        "normalizer": normalizer,
        "gap": sp.Piecewise((sp.log((b - a) * density_in), (y >= lo) & (y <= u)),
                            (sp.log((b - a) * density_out), True)) - sp.log(normalizer),
        "bayes_mean": (density_out * kernel_moment(a, b) + (pi / (u - lo)) * kernel_moment(lo, u))
        / train_mass,
        "balanced_mean": balanced_mean,
        "class_prob_bal": class_prob_bal,
        "class_prob_train": bin_train / train_mass,
        "class_gap": sp.log(bin_train / train_mass) - sp.log(class_prob_bal),
    }
    checks["uniform mixture (π = 0): Z = 1"] = sp.simplify(normalizer.subs(pi, 0)) == 1

    # (i) Gaussian p_train = N(m, s²) / K on [a, b].
    variance = sigma ** 2 * s ** 2 / (sigma ** 2 + s ** 2)
    center = (t * s ** 2 + m * sigma ** 2) / (sigma ** 2 + s ** 2)
    product = _normal(y, t, sigma) * _normal(y, m, s)
    completed = _normal(t, m, sp.sqrt(sigma ** 2 + s ** 2)) * _normal(y, center, sp.sqrt(variance))
    checks["N(y;t,σ²) N(y;m,s²) = N(t;m,σ²+s²) N(y;c,v)"] = sp.simplify(
        sp.expand_log(sp.log(product) - sp.log(completed), force=True)) == 0
    K = P0((a - m) / s, (b - m) / s)
    root = sp.sqrt(variance)

    def product_mass(low: sp.Expr, high: sp.Expr) -> sp.Expr:
        """∫_low^high N(y; t, σ²) N(y; m, s²) dy (completed square)."""
        return _normal(t, m, sp.sqrt(sigma ** 2 + s ** 2)) * P0((low - center) / root,
                                                                (high - center) / root)

    g_normalizer = (b - a) * product_mass(a, b) / (K * total)
    g_class_train = P0((e0 - center) / root, (e1 - center) / root) / P0((a - center) / root,
                                                                        (b - center) / root)
    gaussian = {
        "normalizer": g_normalizer,
        "gap": sp.log((b - a) * _normal(y, m, s) / K) - sp.log(g_normalizer),
        "bayes_mean": center + root * P1((a - center) / root, (b - center) / root)
        / P0((a - center) / root, (b - center) / root),
        "balanced_mean": balanced_mean,
        "class_prob_bal": class_prob_bal,
        "class_prob_train": g_class_train,
        "class_gap": sp.log(g_class_train) - sp.log(class_prob_bal),
    }
    failed = [name for name, passed in checks.items() if not passed]
    if failed:
        raise ArithmeticError(f"symbolic checks failed: {failed}")
    symbols = {str(v): v for v in (t, y, e0, e1, sigma, a, b, lo, u, pi, m, s)}
    return Derivation(symbols=symbols, forms={"mixture": mixture, "gaussian": gaussian},
                      checks=checks)


@dataclass(frozen=True)
class ClosedForms:
    """numpy callables ``forms[family][quantity](t, y, e0, e1, sigma, <family parameters>)``
    (arguments in :data:`ARGUMENTS` order; unused ones are accepted and ignored)."""

    forms: dict[str, dict[str, Callable[..., np.ndarray]]]

    def __call__(self, family: str, quantity: str, **values: float | np.ndarray) -> np.ndarray:
        """Evaluate by keyword, e.g. ``("mixture", "normalizer", t=..., sigma=..., ...)``;
        ``y``, ``e0``, ``e1`` default to 0 where the quantity does not use them."""
        args = [values.get(name, 0.0) for name in ARGUMENTS[family]]
        return np.asarray(self.forms[family][quantity](*args), dtype=np.float64)


@cache
def closed_forms() -> ClosedForms:
    """Lambdify every derived expression to numpy (``erf`` from scipy)."""
    derivation = derive()
    modules = [{"erf": special.erf}, "numpy"]
    forms = {}
    for family, expressions in derivation.forms.items():
        args = [derivation.symbols[name] for name in ARGUMENTS[family]]
        forms[family] = {name: sp.lambdify(args, expr, modules=modules)
                         for name, expr in expressions.items()}
    return ClosedForms(forms=forms)


PHI = sp.Function("Phi")  # the standard normal CDF
SMALL_PHI = sp.Function("phi")  # the standard normal density


def readable(expr: sp.Expr) -> sp.Expr:
    """``expr`` in the notation people read: ``erf`` as the normal CDF ``Φ``
    (``erf(x) = 2Φ(√2 x) − 1``), Gaussian exponentials as the density ``φ``
    (``exp(−w²/2) = √(2π) φ(w)``, ``φ`` even), then simplified.

    Display only: the lambdified forms keep ``erf``. The test checks that the two agree.
    """
    out = expr.replace(sp.erf, lambda arg: 2 * PHI(sp.sqrt(2) * arg) - 1)

    def exp_as_phi(arg):
        width = sp.factor(sp.powdenest(sp.sqrt(sp.simplify(-2 * arg)), force=True))
        return sp.sqrt(2 * sp.pi) * SMALL_PHI(width)

    out = sp.simplify(out.replace(sp.exp, exp_as_phi))
    # φ is even and every φ argument here is |w| times positive factors: drop the |·|.
    return out.replace(lambda e: isinstance(e, SMALL_PHI) and e.args[0].has(sp.Abs),
                       lambda e: SMALL_PHI(e.args[0].replace(sp.Abs, lambda inner: inner)))


READABLE_QUANTITIES = ("normalizer", "gap", "bayes_mean", "balanced_mean", "class_prob_bal",
                       "class_prob_train")


@cache
def readable_forms() -> dict[str, dict[str, sp.Expr]]:
    """:func:`readable` of every closed form that a reader needs (``class_gap`` is the log
    ratio of the two class probabilities and is left out)."""
    derivation = derive()
    return {family: {name: readable(expressions[name]) for name in READABLE_QUANTITIES}
            for family, expressions in derivation.forms.items()}


def format_derivation(derivation: Derivation, latex: bool = False) -> str:
    """The closed forms, simplified and in Φ/φ notation, as text or LaTeX, with the checks."""
    lines = ["Balanced-vs-imbalanced regression gap, closed forms. p_bal(y|x) = N(y; t, sigma^2) "
             "restricted to [a, b]; Phi and phi are the standard normal CDF and density."]
    families = {"mixture": "p_train = (1-pi_w) U[a,b] + pi_w U[l,u]",
                "gaussian": "p_train = N(m, s^2) restricted to [a,b]"}
    for family, expressions in readable_forms().items():
        lines.append("")
        lines.append(f"== {family}: {families[family]}")
        for name, expr in expressions.items():
            text = sp.latex(expr) if latex else sp.sstr(expr)
            lines.append(f"{name}  [{DESCRIPTIONS[name]}]")
            lines.append(f"  {text}")
        lines.append(f"class_gap  [{DESCRIPTIONS['class_gap']}]")
        lines.append("  log(class_prob_train) - log(class_prob_bal)")
    lines.append("")
    lines.append("symbolic checks: " + "; ".join(f"{k}: {'ok' if v else 'FAILED'}"
                                                  for k, v in derivation.checks.items()))
    return "\n".join(lines)
