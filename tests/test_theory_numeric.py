"""Numeric theory: closed form = quadrature = Monte Carlo, and the issue's properties."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from clsreg.analysis.errors import InputError
from clsreg.analysis.theory import (
    bayes_mean,
    bound_grid,
    captured_fraction,
    class_edges,
    class_gap,
    class_log_posteriors,
    decompose,
    density_from_callable,
    density_from_samples,
    excess_mse,
    format_bound_summary,
    gap,
    gaussian_density,
    log_diff_ndtr,
    log_normalizer,
    window_mixture_density,
)
from clsreg.analysis.theory_symbolic import closed_forms
from scipy import integrate, stats

A, B, SIGMA = -1.5, 1.3, 0.07
LOW, HIGH, PI = 0.1, 0.3, 0.9  # window [0.2 ± 0.1] with weight 0.9
MIX = dict(sigma=SIGMA, a=A, b=B, l=LOW, u=HIGH, pi_w=PI)
GAUSS = dict(sigma=SIGMA, a=A, b=B, m=0.2, s=0.3)
T = np.array([-1.5, -0.9, -0.2, 0.05, 0.2, 0.33, 0.6, 1.3])  # well-conditioned for erf forms


def _mixture():
    return window_mixture_density(A, B, 0.2, 0.1, PI)


def _mixture_callable():
    density = _mixture()
    return density_from_callable(lambda y: np.exp(density.log_pdf_at(y)), A, B,
                                 breakpoints=(LOW, HIGH))


@pytest.mark.parametrize("alpha,beta", [(-40, -39.9), (-3, -2.99999), (-1e-9, 1e-9),
                                        (-0.3, 0.7), (5, 6), (0.001, 0.0011), (-8, -1e-3),
                                        (1, 1 + 1e-7), (-30, -30 + 1e-6), (10, 10.05), (-6, 7)])
def test_log_diff_ndtr_matches_high_precision(alpha, beta):
    mpmath.mp.dps = 60
    mass = mpmath.ncdf(beta) - mpmath.ncdf(alpha)
    value = float(log_diff_ndtr(alpha, beta))
    # Relative error of the mass itself: |Δ log| ≈ |Δ mass| / mass.
    assert abs(value - float(mpmath.log(mass))) <= 4e-15 * max(1.0, abs(value))


def test_closed_form_equals_quadrature_mixture():
    forms = closed_forms()
    for density in (_mixture(), _mixture_callable()):
        z = np.exp(log_normalizer(density, T, SIGMA))
        np.testing.assert_allclose(z, forms("mixture", "normalizer", t=T, **MIX), rtol=1e-8)
        np.testing.assert_allclose(bayes_mean(density, T, SIGMA),
                                   forms("mixture", "bayes_mean", t=T, **MIX), rtol=1e-8)
        for y in (0.0, 0.2, 0.31):
            np.testing.assert_allclose(gap(density, T, y, SIGMA),
                                       forms("mixture", "gap", t=T, y=y, **MIX), rtol=1e-8,
                                       atol=1e-12)  # Δ is a log: absolute error near 0
        edges = np.array([A, 0.0, 0.2, B])
        near = T[(T > -0.3) & (T < 0.6)]  # where the class's erf differences are accurate
        np.testing.assert_allclose(
            class_gap(density, near, 0.1, SIGMA, edges),
            forms("mixture", "class_gap", t=near, e0=0.0, e1=0.2, **MIX), rtol=1e-8)


def test_closed_form_equals_quadrature_gaussian():
    forms = closed_forms()
    density = gaussian_density(A, B, 0.2, 0.3)
    np.testing.assert_allclose(np.exp(log_normalizer(density, T, SIGMA)),
                               forms("gaussian", "normalizer", t=T, **GAUSS), rtol=1e-8)
    np.testing.assert_allclose(bayes_mean(density, T, SIGMA),
                               forms("gaussian", "bayes_mean", t=T, **GAUSS), rtol=1e-8)
    np.testing.assert_allclose(gap(density, T, 0.25, SIGMA),
                               forms("gaussian", "gap", t=T, y=0.25, **GAUSS), rtol=1e-8,
                               atol=1e-12)
    edges = class_edges(density, 8, "uniform")
    near = T[(T > -0.3) & (T < 0.6)]
    _, train = class_log_posteriors(density, near, SIGMA, edges)
    np.testing.assert_allclose(
        np.exp(train[:, 4]),
        forms("gaussian", "class_prob_train", t=near, e0=edges[4], e1=edges[5], **GAUSS),
        rtol=1e-8)


def test_excess_mse_equals_closed_form_integral():
    forms = closed_forms()

    def integrand(t):
        shift = (forms("mixture", "bayes_mean", t=t, **MIX)
                 - forms("mixture", "balanced_mean", t=t, **MIX))
        return float(shift ** 2) / (B - A)

    reference = integrate.quad(integrand, A, B, points=[LOW, HIGH], limit=400,
                               epsabs=0, epsrel=1e-12)[0]
    assert excess_mse(_mixture(), SIGMA) == pytest.approx(reference, rel=1e-8)


@pytest.mark.parametrize("window,sigma", [(0.001, 0.001), (0.001, 0.01), (0.03, 0.001)])
def test_narrow_windows_and_small_sigma_are_stable(window, sigma):
    """Against 50-digit references, including t far from the window (erf forms fail)."""
    mpmath.mp.dps = 50
    low, high, center, pi = 0.0, 1.0, 0.4, 0.9
    density = window_mixture_density(low, high, center, window, pi)
    left, right = center - window, center + window
    t = np.array([0.0, 0.2, center - 3 * sigma, center, center + window, 0.9, 1.0])

    def kernel(lo, hi, tt):
        return mpmath.ncdf((hi - tt) / sigma) - mpmath.ncdf((lo - tt) / sigma)

    def moment(lo, hi, tt):  # ∫ (y - t) N dy
        return sigma * (mpmath.npdf((lo - tt) / sigma) - mpmath.npdf((hi - tt) / sigma))

    for tt, z, mean in zip(t, np.exp(log_normalizer(density, t, sigma)),
                           bayes_mean(density, t, sigma), strict=True):
        tt = mpmath.mpf(float(tt))
        total = kernel(low, high, tt)
        train = (1 - pi) * total + pi / (right - left) * kernel(left, right, tt)
        assert float(z) == pytest.approx(float(train / total), rel=1e-10)
        shift = ((1 - pi) * moment(low, high, tt)
                 + pi / (right - left) * moment(left, right, tt)) / train
        assert float(mean) == pytest.approx(float(tt + shift), rel=1e-10, abs=1e-14 * sigma)


def _truncated_normal(rng, t, sigma, low, high):
    return stats.truncnorm.rvs((low - t) / sigma, (high - t) / sigma, loc=t, scale=sigma,
                               random_state=rng)


def test_monte_carlo_agrees_within_standard_error():
    rng = np.random.default_rng(7)
    density = _mixture()
    count = 200_000
    # Z(t) = E_{y ~ p_bal(.|t)} [w(y)] at a few t.
    for t in (0.05, 0.15, 0.32):  # near the window, where w(y) varies
        y = _truncated_normal(rng, np.full(count, t), SIGMA, A, B)
        w = np.exp(density.log_pdf_at(y)) * (B - A)
        z = float(np.exp(log_normalizer(density, t, SIGMA)))
        assert abs(w.mean() - z) < 3.0 * w.std(ddof=1) / np.sqrt(count)
    # E|Δ| and E|Δ_class| under p_bal(t, y).
    t = rng.uniform(A, B, count)
    y = _truncated_normal(rng, t, SIGMA, A, B)
    edges = class_edges(density, 16, "uniform")
    result = decompose(density, SIGMA, edges)
    for exact, samples in ((result.expected_gap, np.abs(gap(density, t, y, SIGMA))),
                           (result.expected_class_gap,
                            np.abs(class_gap(density, t, y, SIGMA, edges)))):
        assert abs(samples.mean() - exact) < 3.0 * samples.std(ddof=1) / np.sqrt(count)


def test_uniform_targets_have_no_gap():
    density = window_mixture_density(0.0, 2.0, 1.0, 0.2, 0.0)
    t = np.linspace(0.0, 2.0, 7)
    for y in (0.0, 0.5, 1.9):
        np.testing.assert_allclose(gap(density, t, y, 0.05), gap(density, t, 0.3, 0.05),
                                   atol=1e-15)
    assert np.max(np.abs(gap(density, t, 0.3, 0.05))) < 1e-14
    assert excess_mse(density, 0.05) < 1e-28  # zero up to double rounding (4 * 2**-104)


def test_gap_is_constant_in_y_for_uniform_samples_histogram():
    values = np.linspace(0.0, 1.0, 64_000, endpoint=False) + 1 / 128_000
    density = density_from_samples(values, (0.0, 1.0), num_bins=64, pseudo_count=0.0)
    y = np.linspace(0.0, 1.0, 33)
    delta = gap(density, 0.4, y, 0.1)
    assert np.ptp(delta) < 1e-12


def test_excess_mse_grows_with_imbalance():
    values = [excess_mse(window_mixture_density(0.0, 1.0, 0.37, half, 0.9), 0.075)
              for half in (0.3, 0.1, 0.03)]  # mild, moderate, severe
    assert 0.0 < values[0] < values[1] < values[2]


def test_captured_fraction_zero_for_one_class_and_tends_to_one():
    density = window_mixture_density(0.0, 1.0, 0.37, 0.03, 0.9)
    for binning in ("uniform", "equal"):
        assert captured_fraction(density, 0.05, 1, binning) == 0.0
        values = [captured_fraction(density, 0.05, c, binning) for c in (4, 64, 1024)]
        assert values[-1] > 0.99
        assert values[0] < values[-1]


def test_bound_four_holds_on_grid_with_consistent_slack():
    rows = bound_grid(window_stds=(0.3, 0.03, 0.001), sigmas=(0.1, 0.01, 0.002),
                      class_counts=(1, 4, 64))
    assert len(rows) == 54
    for row in rows:
        bound = row.bound
        assert bound.holds and bound.slack > 0
        # slack = L_imb^CE - E[Δ_within] with E[Δ_within] = -KL <= 0.
        assert bound.mean_within <= 1e-12
        assert bound.slack == pytest.approx(bound.l_imb_ce - bound.mean_within, abs=1e-9)
        if row.num_classes == 1:
            assert bound.l_bal_ce == 0.0 and row.captured_fraction == 0.0
    smallest = min(r.bound.slack for r in rows)
    assert format_bound_summary(rows, "grid.csv") == (
        f"bound (4) holds at 54 of 54 grid points; smallest slack {smallest:.4g} nats "
        "-> grid.csv")


def test_invalid_inputs_raise_input_error():
    with pytest.raises(InputError):
        log_normalizer(_mixture(), 0.0, 0.0)
    with pytest.raises(InputError):
        density_from_samples(np.array([]))
    with pytest.raises(InputError):
        density_from_callable(lambda y: np.where(y > 0.5, 1.0, 0.0), 0.0, 1.0)
