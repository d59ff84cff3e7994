"""Methods: a new method is one value, and the engine trains it as autograd would.

The methods below exist in this file alone (plus the registered ``lds``). Each is trained by
the population engine (its hand-written backward through the trunk, the method's output
gradients) and by the autograd
reference (autograd through the whole objective); in float64 the weights must agree to 1e-10
(the engine's own gradients agree with autograd's to ~1e-14 after two epochs).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from clsreg.analysis.binning import assign_labels, bin_centres, keep_probabilities, make_edges
from clsreg.analysis.errors import ConfigError
from clsreg.core.methods import (
    BMC,
    CROSS_ENTROPY,
    HL_GAUSS,
    HUBER,
    L1,
    LDS,
    LEGACY_CONSTANTS,
    METHODS,
    ClassHead,
    ClassificationLoss,
    Method,
    RegressionLoss,
    Weighting,
    constants_digest,
    get_method,
    method_identity,
    method_record,
    parse_methods,
    registered_method,
    stored_identity,
)
from clsreg.core.recipe import TrainRecipe
from clsreg.simulate.population import Architecture, Member, Population
from clsreg.simulate.reference import train_single

HUBER_DELTA = 0.3


def huber(error):
    """Huber terms with tensors and arrays alike: 0.5·min(|e|, δ)² + δ·(|e| − min(|e|, δ))."""
    size = abs(error)
    inner = size.clip(max=HUBER_DELTA)
    return 0.5 * inner ** 2 + HUBER_DELTA * (size - inner)


def brier(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Squared error between softmax and one-hot, averaged over the non-ignored samples."""
    probs = torch.softmax(logits, dim=-1)
    valid = labels != -1
    onehot = torch.nn.functional.one_hot(labels.clamp(min=0), logits.shape[-1]).to(probs)
    per_sample = ((probs - onehot) ** 2).sum(dim=-1) * valid
    return per_sample.sum(dim=-1) / valid.sum(dim=-1).clamp(min=1)


def inverse_frequency(y: np.ndarray) -> np.ndarray:
    """Weights ∝ 1 / (count of the target's bin among 8), normalized to mean 1."""
    labels = assign_labels(y, make_edges(y, 8, "uniform"))
    weights = 1.0 / np.bincount(labels, minlength=8)[labels]
    return weights / weights.mean()


HUBER_CE = Method("huber_ce", regression=RegressionLoss("huber", terms=huber),
                  head=ClassHead(num_classes=8, binning="equal", loss=CROSS_ENTROPY))
L1_BRIER_WEIGHTED = Method("l1_brier", regression=L1,
                           head=ClassHead(num_classes=6, loss=ClassificationLoss("brier", brier)),
                           weighting=Weighting("inverse_frequency", inverse_frequency))
WEIGHTED_MSE = Method("wmse", weighting=Weighting("inverse_frequency", inverse_frequency))


def _members(method: Method, count: int = 3) -> list[Member]:
    members = []
    for index in range(count):
        rng = np.random.default_rng(40 + index)
        x = rng.uniform(-1, 1, 512 + 64 * index)
        y = np.sin(5 * x + index) + 0.1 * rng.normal(size=x.size)
        labels = keep = None
        if method.head is not None:
            edges = make_edges(y, method.head.num_classes, method.head.binning)
            labels = assign_labels(y, edges)
            if method.head.binning == "equal":
                keep = keep_probabilities(labels, edges.size - 1)
        weights = method.weighting.weights(y) if method.weighting is not None else None
        centres = bin_centres(edges) if method.predicts_from_classes else None
        members.append(Member(x=x, y=y, lam=(2.0, 5.0, 0.5)[index],
                              recipe=TrainRecipe(lr=5e-3, weight_decay=1e-3),
                              init_seed=index, order_seed=(index, 9), labels=labels, keep=keep,
                              weights=weights, centres=centres))
    return members


def _max_relative_error(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(a[k] - b[k])) / np.max(np.abs(b[k]))) for k in b
               if np.max(np.abs(b[k])) > 0)


# Every registered method (a new entry is checked without editing this list), the methods of
# this file, and registered ones with other constants (so the constants reach the engine's
# and the reference's losses alike).
CHECKED_METHODS = [
    *(method.configured(num_classes=6) for method in METHODS.values()),
    HUBER_CE, L1_BRIER_WEIGHTED, WEIGHTED_MSE,
    replace(METHODS["huber"].with_params(regression={"delta": 0.3}), name="huber_0.3"),
    replace(METHODS["regcls_bmc"].configured(num_classes=6).with_params(
        regression={"sigma": 0.6}), name="regcls_bmc_0.6"),
    replace(METHODS["hlgauss"].configured(num_classes=6).with_params(
        classification={"sigma_bins": 1.5}), name="hlgauss_1.5"),
    replace(METHODS["lds"].with_params(weighting={"bins": 20, "kernel_sigma": 1.0,
                                                  "kernel_size": 3}), name="lds_20"),
]


@pytest.mark.parametrize("fused", [True, False], ids=["fused-update", "masked-update"])
@pytest.mark.parametrize("method", CHECKED_METHODS, ids=lambda m: m.name)
def test_every_method_trains_in_the_engine_as_in_the_reference(method, fused):
    members = _members(method)
    architecture = Architecture((6, 15), method.num_classes)
    config = dict(optimizer="adam", epochs=2, batch_size=64)
    members = [m.trained_with(**config) for m in members]
    result = Population(architecture, members, method, fused_update=fused,
                        dtype="float64").train()
    assert not result.diverged.any()
    for i, member in enumerate(members):
        reference = train_single(architecture, member, method, dtype="float64")
        assert _max_relative_error(result.parameters[i], reference) < 1e-10


def test_the_method_changes_the_model():
    # Same data, seeds and λ: a different loss gives different weights (the test above does
    # not compare a method with itself by accident).
    members = _members(HUBER_CE, 1)
    architecture = Architecture((6, 15), 8)
    config = dict(optimizer="adam", epochs=2, batch_size=64)
    member = members[0].trained_with(**config)
    huber_ce = train_single(architecture, member, HUBER_CE, dtype="float64")
    regcls = train_single(architecture, member,
                          get_method("regcls").configured(num_classes=8, binning="equal"),
                          dtype="float64")
    assert _max_relative_error(huber_ce, regcls) > 1e-3
    # --loss sets plain regression losses only: a method's own loss is kept.
    assert HUBER_CE.configured(regression="l1").regression.name == "huber"


def test_hand_written_gradients_equal_autograd():
    rng = np.random.default_rng(0)
    prediction = torch.as_tensor(rng.normal(size=(3, 40)))
    target = torch.as_tensor(rng.normal(size=(3, 40)))
    weights = torch.as_tensor(rng.uniform(0.5, 2, size=(3, 40)))
    scale = torch.as_tensor([[1.0], [7.0], [0.25]], dtype=torch.float64)
    mse = get_method("reg").regression
    autograd_mse = RegressionLoss("mse", terms=mse.per_sample)  # no hand-written gradient
    for w in (None, weights):
        np.testing.assert_allclose(mse.output_gradient(prediction, target, scale, w),
                                   autograd_mse.output_gradient(prediction, target, scale, w),
                                   rtol=1e-13)
    logits = torch.as_tensor(rng.normal(size=(3, 40, 5)))
    labels = torch.as_tensor(rng.integers(-1, 5, size=(3, 40)))
    fast, slow = logits.clone(), logits.clone()
    row_scale = CROSS_ENTROPY.gradient_in_place(fast, labels)
    assert ClassificationLoss("ce", CROSS_ENTROPY.value).gradient_in_place(slow, labels) is None
    np.testing.assert_allclose(fast * row_scale, slow, rtol=1e-12, atol=1e-15)


def test_registry_and_configuration():
    assert list(METHODS) == ["reg", "regcls", "lamreg", "lds", "bmc", "regcls_lds", "regcls_bmc",
                             "hlgauss", "l1", "huber"]
    # --loss applies to the MSE methods only: l1, huber and bmc keep their own loss.
    assert get_method("huber").configured(regression="l1").regression.name == "huber"
    assert get_method("bmc").configured(regression="l1").regression.name == "bmc"
    assert get_method("reg+cls") is METHODS["regcls"]  # the old real-data spelling
    assert parse_methods("reg, regcls,reg") == ("reg", "regcls")
    method = get_method("regcls").configured(num_classes=64, binning="equal", lam=100.0,
                                             regression="l1")
    assert (method.num_classes, method.head.binning, method.head.lam) == (64, "equal", 100.0)
    assert method.regression is L1 and get_method("regcls").regression.name == "mse"
    assert get_method("reg").configured(num_classes=64).num_classes == 0
    for bad in ("", "reg,bogus"):
        with pytest.raises(ConfigError):
            parse_methods(bad)
    with pytest.raises(ConfigError, match="number of classes"):
        get_method("regcls").configured(num_classes=1)
    with pytest.raises(ConfigError, match="regression loss"):
        get_method("reg").configured(regression="l3")


@pytest.mark.parametrize("fused", [True, False])
def test_lamreg_is_mse_scaled_by_lambda_and_equals_reg_with_decay_divided_by_lambda(fused):
    """λ·MSE alone (the loss-scale control) is its own registry entry, equal to the autograd
    reference; under Adam with coupled L2 its gradient is λ(∇MSE + (wd/λ)θ), and Adam's
    update is invariant to the factor λ except where ε = 1e-8 is not small against √v
    (near-dead units), so it trains nearly the model plain MSE trains with decay wd/λ — the
    λ-fold weaker regularization reg+cls has — and not the one with decay wd."""
    lam = 100.0
    lamreg = get_method("lamreg").configured(lam=lam)
    assert lamreg.lam == lam and lamreg.head is None and "λ·mse" in lamreg.describe()
    members = [m.__class__(**{**m.__dict__, "lam": lam}) for m in _members(get_method("reg"), 2)]
    architecture = Architecture((6, 15), 0)
    config = dict(optimizer="adam", epochs=2, batch_size=64)
    members = [m.trained_with(**config) for m in members]
    result = Population(architecture, members, lamreg, fused_update=fused,
                        dtype="float64").train()
    for i, member in enumerate(members):
        reference = train_single(architecture, member, lamreg, dtype="float64")
        assert _max_relative_error(result.parameters[i], reference) < 1e-10
        weaker = member.__class__(**{**member.__dict__, "lam": 1.0}).trained_with(
            weight_decay=member.recipe.weight_decay / lam)
        plain = train_single(architecture, weaker, get_method("reg"), dtype="float64")
        stronger = member.__class__(**{**member.__dict__, "lam": 1.0})
        as_reg = train_single(architecture, stronger, get_method("reg"), dtype="float64")
        # Measured: 0.003 vs 0.13 and 0.002 vs 0.16 (max error relative to each weight's scale).
        assert (_max_relative_error(reference, plain)
                < 0.05 * _max_relative_error(reference, as_reg))


def test_decay_scaling_gives_lambda_runs_lambda_times_the_decay():
    from clsreg.simulate.grid import expand, grid_from_mapping
    from clsreg.simulate.training import member_for

    grid = grid_from_mapping({"settings": ["clean"], "samplings": ["severe"], "functions": [0],
                              "seeds": [0], "num_classes": [4], "num_points": 1500,
                              "batch_size": 64, "methods": ["reg", "regcls", "lamreg"],
                              "decay_scaling": "lambda"})
    from clsreg.simulate.data import make_dataset

    dataset = make_dataset(0, "clean", "severe", 2732, num_points=1500)
    decay = {run.method: member_for(run, run.method_value(), dataset)[0].recipe.weight_decay
             for run in expand(grid)}
    assert decay == {"reg": 1e-3, "regcls": pytest.approx(1e-3 * 100),
                     "lamreg": pytest.approx(1e-3 * 100)}


def test_a_registered_method_flows_through_sweep_report_and_real_data(monkeypatch, tmp_path):
    # One registry entry (added for this test only) is all a sweep, the report, real-data
    # training and the CLI need.
    from click.testing import CliRunner
    from clsreg.cli import cli
    from clsreg.simulate.grid import grid_from_mapping
    from clsreg.simulate.report import report
    from clsreg.simulate.sweep import run_sweep

    monkeypatch.setitem(METHODS, "l1cls", Method("l1cls", regression=L1, head=ClassHead()))
    # A method without a legacy entry is stored under its name and its constants' hash.
    l1cls = method_identity("l1cls")
    assert l1cls == f"l1cls@{constants_digest(METHODS['l1cls'].constants())}"
    grid = grid_from_mapping({"settings": ["clean"], "samplings": ["severe"], "functions": [0, 1],
                              "seeds": [0], "num_classes": [4], "epochs": 2,
                              "num_points": 1500, "batch_size": 64,
                              "methods": ["reg", "regcls", "l1cls"]})
    run_sweep(grid, tmp_path / "sim", device="cpu", population_size=8, show_progress=False)
    rows, path = report(tmp_path / "sim", num_resamples=200)
    assert [(r["method"], r["n_pairs"]) for r in rows] == [(l1cls, 2), ("regcls", 2)]
    assert path.read_text().splitlines()[0].startswith("method,setting,sampling,num_classes,"
                                                       "mse_reg,mse_method,n_seeds,")
    assert rows[0]["mse_method"] != rows[1]["mse_method"]

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 1200)
    table = tmp_path / "t.csv"
    np.savetxt(table, np.c_[x, np.exp(2 * x) + rng.normal(0, 0.1, x.size)], delimiter=",",
               header="x,y", comments="")
    base = ["realdata", "run", "--csv", str(table), "--target", "y", "--seeds", "1",
            "--epochs", "2", "--num-classes", "4", "--device", "cpu", "--out",
            str(tmp_path / "real")]
    first = CliRunner().invoke(cli, [*base, "--methods", "reg,regcls"])
    assert first.exit_code == 0, first.output
    added = CliRunner().invoke(cli, [*base, "--methods", "reg,regcls,l1cls"])
    # only l1cls is new
    assert added.exit_code == 0 and "1 runs trained, 2 already stored" in added.output
    result = CliRunner().invoke(cli, ["realdata", "report", str(tmp_path / "real")])
    assert result.exit_code == 0, result.output
    assert f"/ {l1cls}" in result.output and "/ regcls" in result.output
    assert (tmp_path / "real" / f"errors_per_bin_natural_{l1cls}.png").exists()


# ------------------------------------------------ a method's constants are its identity
def test_the_legacy_constants_are_the_registered_ones_and_keep_the_bare_names():
    assert LEGACY_CONSTANTS == {name: method.constants() for name, method in METHODS.items()}
    assert {name: method_identity(name) for name in METHODS} == {name: name for name in METHODS}
    assert method_record("huber") == {"model": "huber"}  # legacy rows: no new field
    # Every registered loss scores predictions under its constants (model selection); BMC
    # and its σ score as MSE.
    scores = {name: method.regression.score(np.zeros(2), np.array([0.5, 3.0]))
              for name, method in METHODS.items()}
    assert scores["bmc"] == scores["reg"] == pytest.approx(4.625)
    assert scores["huber"] == pytest.approx((0.125 + 2.5) / 2) and scores["l1"] == 1.75
    assert method_identity("reg+cls") == "regcls"  # the old spelling
    assert stored_identity("reg+cls") == "regcls"
    assert stored_identity("huber@0123abcd") == "huber@0123abcd"  # read without the registry
    with pytest.raises(ConfigError, match="unknown method"):
        stored_identity("bogus@0123abcd")


def test_a_changed_constant_changes_the_identity(monkeypatch):
    changed = METHODS["huber"].with_params(regression={"delta": 2.0})
    assert changed.regression.params == (("delta", 2.0),) and METHODS["huber"] != changed
    assert "huber(delta=2)" in changed.describe()
    # The hash is of the constants as sorted JSON: pinned, so that it stays stable.
    assert constants_digest(changed.constants()) == "58307352"
    monkeypatch.setitem(METHODS, "huber", changed)
    assert method_identity("huber") == "huber@58307352"
    assert method_record("huber") == {"model": "huber@58307352",
                                      "method_constants": changed.constants()}
    assert registered_method("huber@58307352") is changed
    # A run stored with other constants (here: the legacy ones) is not trained with these.
    for stale in ("huber", "huber@0123abcd"):
        with pytest.raises(ConfigError, match="other constants"):
            registered_method(stale)
    # Every constant counts, the configured defaults included.
    for name, method in [("lds", METHODS["lds"].with_params(weighting={"kernel_size": 7})),
                         ("hlgauss", METHODS["hlgauss"].with_params(
                             classification={"sigma_bins": 1.0})),
                         ("bmc", METHODS["bmc"].with_params(regression={"sigma": 0.5})),
                         ("regcls", METHODS["regcls"].configured(num_classes=32))]:
        monkeypatch.setitem(METHODS, name, method)
        assert method_identity(name).startswith(f"{name}@")


def test_with_params_refuses_constants_a_method_does_not_have():
    with pytest.raises(ConfigError, match="huber has no constant sigma; its constants are delta"):
        METHODS["huber"].with_params(regression={"sigma": 1.0})
    with pytest.raises(ConfigError, match="mse has no constant delta; its constants are none"):
        METHODS["reg"].with_params(regression={"delta": 1.0})
    with pytest.raises(ConfigError, match="has no weighting"):
        METHODS["reg"].with_params(weighting={"bins": 10})
    with pytest.raises(ConfigError, match="has no class head"):
        METHODS["huber"].with_params(classification={"sigma_bins": 1.0})
    with pytest.raises(ConfigError, match="lds bins must be an integer"):
        METHODS["lds"].with_params(weighting={"bins": 10.5})
    with pytest.raises(ConfigError, match="huber delta must be > 0"):
        METHODS["huber"].with_params(regression={"delta": 0.0})


def _csv_table(path, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, 1200)
    np.savetxt(path, np.c_[x, np.exp(2 * x) + rng.normal(0, 0.1, x.size)], delimiter=",",
               header="x,y", comments="")
    return path


def test_a_changed_constant_trains_anew_and_the_legacy_runs_still_pair(monkeypatch, tmp_path):
    """Huber's δ = 2 instead of 1 is a new method: the sweep and the real-data run train it
    instead of reading the δ = 1 runs as its own, and both report against reg."""
    from click.testing import CliRunner
    from clsreg.analysis.store import ResultsStore
    from clsreg.cli import cli
    from clsreg.simulate.grid import grid_from_mapping
    from clsreg.simulate.report import report
    from clsreg.simulate.sweep import run_sweep

    grid = grid_from_mapping({"settings": ["clean"], "samplings": ["severe"], "functions": [0, 1],
                              "seeds": [0], "epochs": 2, "num_points": 1500, "batch_size": 64,
                              "methods": ["reg", "huber"]})
    table = _csv_table(tmp_path / "t.csv")
    real = ["realdata", "run", "--csv", str(table), "--target", "y", "--seeds", "2",
            "--epochs", "2", "--num-classes", "4", "--device", "cpu", "--methods", "reg,huber",
            "--out", str(tmp_path / "real")]

    def sweep():
        return run_sweep(grid, tmp_path / "sim", device="cpu", population_size=8,
                         show_progress=False)

    first = sweep()
    assert (first.trained, first.skipped) == (4, 0)
    assert CliRunner().invoke(cli, real).exit_code == 0
    again = sweep()  # nothing changed: nothing to train
    assert (again.trained, again.skipped) == (0, 4)

    monkeypatch.setitem(METHODS, "huber", METHODS["huber"].with_params(regression={"delta": 2.0}))
    changed = sweep()
    # The grid's two reg runs are stored; its two huber runs are δ = 2 runs, new.
    assert (changed.total, changed.trained, changed.skipped) == (4, 2, 2)
    with ResultsStore(tmp_path / "sim", create=False) as store:
        configs = {r["key"]: r["config"] for r in store.records()}
    new = {k: c for k, c in configs.items() if c["model"] == "huber@58307352"}
    assert len(new) == 2 and all("/huber@58307352/" in k for k in new)
    assert all(c["method_constants"]["regression_params"] == {"delta": 2.0}
               for c in new.values())
    assert sum("method_constants" in c for c in configs.values()) == 2  # legacy rows: none
    rows, _ = report(tmp_path / "sim", num_resamples=200)
    by_method = {r["method"]: r for r in rows}
    assert {m: r["n_pairs"] for m, r in by_method.items()} == {"huber": 2, "huber@58307352": 2}
    assert by_method["huber"]["mse_reg"] == by_method["huber@58307352"]["mse_reg"]
    assert by_method["huber"]["mse_method"] != by_method["huber@58307352"]["mse_method"]

    result = CliRunner().invoke(cli, real)
    assert result.exit_code == 0 and "2 runs trained" in result.output, result.output
    with ResultsStore(tmp_path / "real", create=False) as store:
        models = [r["config"]["model"] for r in store.records()]
    assert models == ["reg", "huber", "reg", "huber", "huber@58307352", "huber@58307352"]
    reported = CliRunner().invoke(cli, ["realdata", "report", str(tmp_path / "real")])
    assert reported.exit_code == 0, reported.output
    assert "/ huber@58307352" in reported.output and "/ huber\n" in reported.output


# ---------------------------------------------------------------- the registered imbalance fixes
def test_lds_weights_favour_rare_targets_and_average_one():
    rng = np.random.default_rng(2)
    uniform = rng.uniform(0, 1, 20_000)
    weights = LDS.weights(uniform)
    inner = (uniform > 0.05) & (uniform < 0.95)  # the kernel sees no mass beyond the ends
    assert weights.mean() == pytest.approx(1.0)
    assert weights[inner].std() < 0.1
    skewed = np.concatenate([rng.uniform(0, 1, 2_000), rng.uniform(0.4, 0.5, 18_000)])
    weights = LDS.weights(skewed)
    assert weights.mean() == pytest.approx(1.0)
    dense, rare = weights[(skewed > 0.42) & (skewed < 0.48)], weights[skewed > 0.8]
    assert rare.min() > 5 * dense.max()


def test_balanced_mse_matches_its_definition_and_its_gradient():
    """BMC by hand: for sample i, −log softmax_j(−(p_i − y_j)²/2σ²)[i] · 2σ², averaged; and
    the engine's autograd gradient at the outputs equals a central difference."""
    sigma = dict(BMC.params)["sigma"]
    rng = np.random.default_rng(5)
    prediction = rng.normal(size=(2, 7))
    target = rng.normal(size=(2, 7))
    expected = []
    for p, y in zip(prediction, target, strict=True):
        logits = -(p[:, None] - y[None, :]) ** 2 / (2 * sigma ** 2)
        log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        expected.append(-np.mean(np.diag(log_softmax)) * 2 * sigma ** 2)
    value = BMC.value(torch.as_tensor(prediction), torch.as_tensor(target)).numpy()
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    grad = BMC.output_gradient(torch.as_tensor(prediction), torch.as_tensor(target), 3.0)
    step = 1e-6
    bumped = prediction.copy()
    bumped[1, 4] += step
    lowered = prediction.copy()
    lowered[1, 4] -= step
    numeric = 3.0 * (BMC.value(torch.as_tensor(bumped), torch.as_tensor(target))[1]
                     - BMC.value(torch.as_tensor(lowered), torch.as_tensor(target))[1]) / (2 * step)
    assert float(grad[1, 4]) == pytest.approx(float(numeric), rel=1e-6)
    # Huber is quadratic within δ = 1 and linear beyond, on arrays and tensors alike.
    errors = np.array([-3.0, -0.5, 0.0, 0.4, 2.0])
    np.testing.assert_allclose(HUBER.per_sample(errors), [2.5, 0.125, 0.0, 0.08, 1.5])
    np.testing.assert_allclose(HUBER.per_sample(torch.as_tensor(errors)).numpy(),
                               HUBER.per_sample(errors))
    # δ = 2: quadratic up to 2.
    np.testing.assert_allclose(HUBER.with_params(delta=2.0).per_sample(errors),
                               [4.0, 0.125, 0.0, 0.08, 2.0])
    with pytest.raises(ConfigError, match="no per-sample weights"):
        BMC.value(torch.as_tensor(prediction), torch.as_tensor(target), torch.ones(2, 7))


def test_hl_gauss_targets_loss_and_class_prediction():
    from clsreg.core.methods import hl_gauss_targets

    sigma = dict(HL_GAUSS.params)["sigma_bins"]
    table = hl_gauss_targets(8, sigma)
    np.testing.assert_allclose(table.sum(axis=1), 1.0, rtol=1e-12)
    assert all(row.argmax() == i for i, row in enumerate(table))
    # Away from the ends a row is the Gaussian's mass per bin: bin l ± 1 holds
    # Φ(1.5/σ) − Φ(0.5/σ) before renormalization.
    from scipy.stats import norm

    inner = norm.cdf(1.5 / sigma) - norm.cdf(0.5 / sigma)
    assert table[4, 5] / table[4].sum() == pytest.approx(inner / (1 - 2 * norm.cdf(
        -4.5 / sigma)), rel=1e-3)
    rng = np.random.default_rng(2)
    logits = torch.as_tensor(rng.normal(size=(2, 5, 8)))
    labels = torch.as_tensor([[0, 3, -1, 7, 2], [1, 1, 1, -1, -1]])
    expected = []
    for lg, lb in zip(logits.numpy(), labels.numpy(), strict=True):
        log_p = lg - np.log(np.exp(lg).sum(axis=1, keepdims=True))
        terms = [-(table[c] * log_p[i]).sum() for i, c in enumerate(lb) if c >= 0]
        expected.append(np.mean(terms))
    np.testing.assert_allclose(HL_GAUSS.value(logits, labels).numpy(), expected, rtol=1e-12)
    # The engine predicts the expected bin centre, as the reference model's heads give it.
    method = METHODS["hlgauss"].configured(num_classes=6)
    members = _members(method, 2)
    architecture = Architecture((6, 15), 6)
    config = dict(optimizer="adam", epochs=1, batch_size=64)
    members = [m.trained_with(**config) for m in members]
    population = Population(architecture, members, method, dtype="float64")
    population.train()
    predictions, _ = population.predict([m.x for m in members])
    from clsreg.simulate.reference import ReferenceMLP

    for i, member in enumerate(members):
        model = ReferenceMLP(architecture).to(torch.float64)
        model.load(population.parameters()[i])
        with torch.no_grad():
            _, logits = model(torch.as_tensor(member.x).unsqueeze(1))
            by_hand = method.class_prediction(logits, torch.as_tensor(member.centres))
        np.testing.assert_allclose(predictions[i], by_hand.numpy().ravel(), rtol=1e-10)
        assert member.y.min() <= predictions[i].min() and predictions[i].max() <= member.y.max()
    with pytest.raises(ConfigError, match="uniform bins"):
        METHODS["hlgauss"].configured(binning="equal")
