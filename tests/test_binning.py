"""Binning: edges, labels, equal-frequency classes and the class-balanced label mask."""

import numpy as np
import pytest
from clsreg.analysis.binning import (
    IGNORE_LABEL,
    assign_labels,
    balanced_label_mask,
    class_counts,
    equal_frequency_edges,
    imbalance_ratio,
    keep_probabilities,
    make_edges,
    uniform_edges,
)
from clsreg.analysis.errors import InputError
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

# No subnormals: a library built with -ffast-math (imported by other test modules) flushes
# them to zero process-wide, and hypothesis then refuses to draw them.
finite_floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False,
                          allow_subnormal=False)


def test_uniform_edges_and_labels_at_the_boundaries():
    edges = uniform_edges(np.array([0.0, 4.0]), 4)
    np.testing.assert_allclose(edges, [0, 1, 2, 3, 4])
    labels = assign_labels(np.array([-5.0, 0.0, 0.999, 1.0, 3.5, 4.0, 9.0]), edges)
    # interior edge -> upper class, top edge -> last class, outside -> end classes
    assert labels.tolist() == [0, 0, 0, 1, 3, 3, 3]


@pytest.mark.parametrize("num_classes", [4, 16, 64, 256, 1024])
def test_equal_frequency_classes_hold_n_over_c_within_one_on_continuous_data(num_classes):
    values = np.random.default_rng(1).lognormal(size=100_003)
    edges = equal_frequency_edges(values, num_classes)
    counts = class_counts(assign_labels(values, edges), len(edges) - 1)
    assert len(edges) - 1 == num_classes
    expected = values.size / num_classes
    assert np.all(np.abs(counts - expected) <= 1.0)


def test_equal_frequency_merges_heavy_ties_so_the_count_drops_below_c():
    # Half the mass on one value: it cannot be split, so fewer than 8 classes remain.
    values = np.concatenate([np.zeros(5000), np.random.default_rng(2).random(5000)])
    edges = equal_frequency_edges(values, 8)
    counts = class_counts(assign_labels(values, edges), len(edges) - 1)
    assert len(edges) - 1 < 8
    assert counts.sum() == values.size and counts.min() > 0


def test_equal_frequency_from_a_uniform_base_histogram_matches_the_original_recipe():
    values = np.random.default_rng(3).normal(size=50_000)
    edges = equal_frequency_edges(values, 10, base_bins=1024)
    counts = class_counts(assign_labels(values, edges), len(edges) - 1)
    # Base bins are ~1/1024 of the range wide, so classes are equal up to one base bin's mass.
    assert len(edges) - 1 == 10
    assert counts.max() / counts.min() < 1.1


def test_keep_probability_mask_gives_a_balanced_subsample():
    rng = np.random.default_rng(4)
    labels = rng.choice(5, size=100_000, p=[0.5, 0.25, 0.15, 0.07, 0.03])
    keep = keep_probabilities(labels, 5)
    counts = class_counts(labels, 5)
    np.testing.assert_allclose(keep, counts.min() / counts)
    masked = balanced_label_mask(labels, keep, rng)
    kept = class_counts(masked, 5)
    assert set(np.unique(masked)) <= {IGNORE_LABEL, 0, 1, 2, 3, 4}
    assert kept.max() / kept.min() <= 1.2
    # Kept labels are unchanged, dropped ones are -1.
    assert np.all((masked == labels) | (masked == IGNORE_LABEL))


def test_keep_probability_is_zero_for_empty_classes():
    keep = keep_probabilities(np.array([0, 0, 2, 2, 2, 2]), 3)
    np.testing.assert_allclose(keep, [1.0, 0.0, 0.5])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_binning_refuses_nan_and_inf(bad):
    values = np.array([0.0, 1.0, bad])
    for call in (lambda: uniform_edges(values, 4), lambda: equal_frequency_edges(values, 4),
                 lambda: assign_labels(values, np.array([0.0, 1.0])),
                 lambda: imbalance_ratio(values)):
        with pytest.raises(InputError, match="NaN or infinite"):
            call()


def test_unknown_binning_and_bad_class_count_are_input_errors():
    with pytest.raises(InputError, match="unknown binning"):
        make_edges(np.arange(10.0), 4, "quantile")
    with pytest.raises(InputError, match="number of classes must be"):
        uniform_edges(np.arange(10.0), 0)


@settings(max_examples=200, deadline=None)
@given(values=arrays(np.float64, st.integers(1, 300), elements=finite_floats),
       num_classes=st.integers(1, 64), binning=st.sampled_from(["uniform", "equal"]))
def test_edges_are_monotone_and_every_label_is_in_range(values, num_classes, binning):
    edges = make_edges(values, num_classes, binning)
    assert np.all(np.diff(edges) > 0)
    assert 1 <= len(edges) - 1 <= num_classes
    labels = assign_labels(values, edges)
    assert labels.min() >= 0 and labels.max() <= len(edges) - 2
    # Labels never decrease as the value grows.
    order = np.argsort(values, kind="stable")
    assert np.all(np.diff(labels[order]) >= 0)


@settings(max_examples=100, deadline=None)
@given(values=arrays(np.float64, st.integers(2, 200), elements=finite_floats),
       outside=st.lists(finite_floats, min_size=1, max_size=20))
def test_values_outside_the_training_range_clip_to_the_end_classes(values, outside):
    edges = uniform_edges(values, 8)
    labels = assign_labels(np.array(outside), edges)
    below = np.array(outside) < edges[0]
    above = np.array(outside) > edges[-1]
    assert np.all(labels[below] == 0)
    assert np.all(labels[above] == len(edges) - 2)
