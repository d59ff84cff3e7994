"""The population engine against one-model-at-a-time training, divergence and determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from clsreg.analysis.binning import assign_labels, keep_probabilities, make_edges
from clsreg.analysis.errors import ConfigError
from clsreg.core.methods import Method, get_method
from clsreg.core.recipe import TrainRecipe
from clsreg.simulate.population import (
    Architecture,
    Member,
    Population,
    initial_parameters,
)
from clsreg.simulate.reference import train_single


def _member(index: int, num_classes: int, n: int = 640, equal: bool = False,
            lr: float = 1e-2) -> Member:
    rng = np.random.default_rng(100 + index)
    x = rng.uniform(-1, 1, n)
    y = np.sin(4 * x + index) + 0.05 * rng.normal(size=n)
    labels = keep = None
    if num_classes:
        edges = make_edges(y, num_classes, "equal" if equal else "uniform")
        labels = assign_labels(y, edges)
        if equal:
            keep = keep_probabilities(labels, edges.size - 1)
    return Member(x=x, y=y, lam=(1.0, 3.0, 10.0)[index % 3],
                  recipe=TrainRecipe(lr=lr * (1 + index), weight_decay=1e-3), init_seed=index,
                  order_seed=(index, 5), labels=labels, keep=keep)


def _method(num_classes: int) -> Method:
    """The study's two methods: reg, or regcls with ``num_classes`` classes."""
    if not num_classes:
        return get_method("reg")
    return get_method("regcls").configured(num_classes=num_classes)


def _max_relative_error(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(a[k] - b[k])) / np.max(np.abs(b[k]))) for k in b
               if np.max(np.abs(b[k])) > 0)


@pytest.mark.parametrize("fused", [True, False], ids=["fused-update", "masked-update"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "adamw"])
@pytest.mark.parametrize("num_classes", [0, 8])
def test_population_equals_models_trained_one_by_one(optimizer, num_classes, fused):
    # Three models with their own data, λ, learning rate, seeds, one of them with the
    # class-balancing mask and one with a longer training set (an extra step per epoch).
    lr = 1e-2 if optimizer == "adam" else 1e-3
    members = [_member(0, num_classes, lr=lr), _member(1, num_classes, n=700, lr=lr),
               _member(2, num_classes, equal=True, lr=lr)]
    architecture = Architecture((6, 15), num_classes)
    config = dict(optimizer=optimizer, epochs=2, batch_size=64)
    method = _method(num_classes)
    result = Population(architecture, [m.trained_with(**config) for m in members], method,
                        fused_update=fused, dtype="float64").train()
    assert not result.diverged.any()
    for i, member in enumerate(members):
        reference = train_single(architecture, member.trained_with(**config), method,
                                 feed="strong", dtype="float64")
        assert _max_relative_error(result.parameters[i], reference) < 1e-6
        # Training moved the weights: the comparison is not between two initial states.
        start = initial_parameters(architecture, member.init_seed)
        assert _max_relative_error(reference, start) > 1e-3


@pytest.mark.parametrize("fused", [True, False], ids=["fused-update", "masked-update"])
def test_adamw_decay_is_decoupled_from_the_loss_scale(fused):
    """AdamW shrinks weights by lr·wd per step whatever the loss scale, so with a large decay
    it ends far from Adam's coupled L2 (whose decay term is divided out by Adam's normalizer
    only as a share of the gradient); both equal their torch.optim reference."""
    member = _member(0, 8).trained_with(weight_decay=0.5)
    architecture = Architecture((6, 15), 8)
    trained = {}
    for optimizer in ("adam", "adamw"):
        config = dict(optimizer=optimizer, epochs=2, batch_size=64)
        trained_as = member.trained_with(**config)
        result = Population(architecture, [trained_as], _method(8), fused_update=fused,
                            dtype="float64").train()
        reference = train_single(architecture, trained_as, _method(8), feed="strong",
                                 dtype="float64")
        assert _max_relative_error(result.parameters[0], reference) < 1e-10
        trained[optimizer] = reference
    assert _max_relative_error(trained["adamw"], trained["adam"]) > 1e-2


def test_faithful_feed_gives_the_same_model():
    member = _member(1, 8, equal=True)
    architecture = Architecture((6, 15), 8)
    config = dict(optimizer="adam", epochs=2, batch_size=64)
    member = member.trained_with(**config)
    strong = train_single(architecture, member, _method(8), feed="strong", dtype="float64")
    faithful = train_single(architecture, member, _method(8), feed="faithful", dtype="float64")
    assert _max_relative_error(faithful, strong) < 1e-12


@pytest.mark.parametrize("fused", [True, False], ids=["fused-update", "masked-update"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("num_classes", [0, 8])
def test_diverging_model_is_flagged_and_changes_nobody_else(dtype, num_classes, fused):
    members = [_member(i, num_classes, lr=1e-2) for i in range(3)]
    blown = members[1].trained_with(lr=1e6)
    architecture = Architecture((6, 15), num_classes)
    config = dict(optimizer="adam", epochs=2, batch_size=64)
    method = _method(num_classes)
    first, blown, third = (m.trained_with(**config) for m in (members[0], blown, members[2]))
    with_blown = Population(architecture, [first, blown, third], method,
                            fused_update=fused, dtype=dtype).train()
    without = Population(architecture, [first, third], method,
                         fused_update=fused, dtype=dtype).train()
    assert with_blown.diverged.tolist() == [False, True, False]
    assert not without.diverged.any()
    for mine, theirs in zip([with_blown.parameters[0], with_blown.parameters[2]],
                            without.parameters, strict=True):
        for name in theirs:
            np.testing.assert_array_equal(mine[name], theirs[name])
    np.testing.assert_array_equal(with_blown.train_mse[[0, 2]], without.train_mse)


def test_identical_populations_give_identical_numbers():
    members = [_member(i, 16) for i in range(3)]
    architecture = Architecture((6, 15), 16)
    config = dict(optimizer="adam", epochs=2, batch_size=64)
    members = [m.trained_with(**config) for m in members]
    first = Population(architecture, members, _method(16)).train()
    second = Population(architecture, members, _method(16)).train()
    for a, b in zip(first.parameters, second.parameters, strict=True):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])


def test_training_fits_the_function():
    # 1 → 6 → 15 on a smooth target: after a few epochs of Adam the training MSE is a small
    # fraction of the target variance (the MSE of predicting the mean).
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 4096)
    y = np.sin(3 * x)
    member = Member(x=x, y=y, recipe=TrainRecipe("adam", lr=1e-2, epochs=30, batch_size=64),
                    init_seed=3, order_seed=(3,))
    result = Population(Architecture((6, 15), 0), [member], _method(0)).train()
    assert result.train_mse[0] < 0.05 * np.var(y)


def test_initial_weights_are_xavier_and_shared_by_partners():
    plain = initial_parameters(Architecture((6, 15), 0), init_seed=7)
    with_head = initial_parameters(Architecture((6, 15), 64), init_seed=7)
    for name, value in plain.items():
        np.testing.assert_array_equal(value, with_head[name])
    bound = np.sqrt(6 / (15 + 64))
    assert np.abs(with_head["w_cls"]).max() <= bound
    assert np.abs(with_head["w_cls"]).max() > 0.9 * bound
    assert not with_head["b_cls"].any() and not plain["b0"].any()


def test_manual_gradient_matches_autograd_on_one_step():
    # One step of SGD with lr = 1 moves the weights by exactly minus the gradient.
    member = _member(0, 8, equal=True).trained_with(lr=1.0, weight_decay=0.0)
    architecture = Architecture((6, 15), 8)
    config = dict(optimizer="sgd", epochs=1, batch_size=member.x.size)
    member = member.trained_with(**config)
    population = Population(architecture, [member], _method(8), dtype="float64")
    population.train()
    reference = train_single(architecture, member, _method(8), dtype="float64")
    assert _max_relative_error(population.parameters()[0], reference) < 1e-10


@pytest.mark.parametrize("hidden, classes", [((), 0), ((6, 0), 0), ((6, 15), 1)])
def test_bad_architecture_is_a_config_error(hidden, classes):
    with pytest.raises(ConfigError):
        Architecture(hidden, classes)


def test_population_refuses_labels_without_head_and_tiny_sets():
    member = _member(0, 8)
    with pytest.raises(ConfigError):
        Population(Architecture((6, 15), 0), [member.trained_with(batch_size=64)], _method(0))
    with pytest.raises(ConfigError):
        Population(Architecture((6, 15), 8), [member.trained_with(batch_size=1024)],
                   _method(8))
    with pytest.raises(ConfigError, match="classes"):
        Population(Architecture((6, 15), 8), [member.trained_with(batch_size=64)], _method(4))
    with pytest.raises(ConfigError, match="share"):
        Population(Architecture((6, 15), 8),
                   [member, _member(1, 8).trained_with(optimizer="sgd")], _method(8))


def test_cuda_requested_without_cuda_is_a_config_error():
    if torch.cuda.is_available():
        return
    with pytest.raises(ConfigError):
        Population(Architecture(), [_member(0, 0).trained_with(batch_size=64)], _method(0),
                   device="cuda")
