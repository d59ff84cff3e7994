"""``--protocol released`` against statistics of the study's own generator.

``tests/reference/released_reference.json`` was computed once by running the public
``make_data1d.py`` (``tests/reference/make_released_reference.py`` says how); each case's
splits must agree in size exactly and in means and sorted-value checksums to float rounding
(the checksums are rank-weighted sums of ~20,000 values of size ≤ 2.3, so summation order
alone moves them by well under 1e-9 relative).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from clsreg.analysis.errors import InputError
from clsreg.simulate.data import DATA_SEEDS, make_dataset, sine_function
from clsreg.simulate.grid import expand, grid_from_mapping
from clsreg.simulate.released import min_num_points, ood_ranges

REFERENCE = json.loads((Path(__file__).parent / "reference" / "released_reference.json")
                       .read_text())["cases"]


def split_stats(x: np.ndarray, y: np.ndarray) -> dict:
    weights = np.arange(1, x.size + 1) / x.size
    return {"size": int(x.size), "mean_x": float(x.mean()), "mean_y": float(y.mean()),
            "sorted_x_checksum": float(np.sort(x) @ weights),
            "sorted_y_checksum": float(np.sort(y) @ weights),
            "y_by_x_checksum": float(y[np.argsort(x, kind="stable")] @ weights)}


@pytest.mark.parametrize("case", REFERENCE,
                         ids=[f"{c['setting']}-{c['sampling']}-f{c['function']}-s{c['seed_index']}"
                              for c in REFERENCE])
def test_released_protocol_matches_the_public_generator(case):
    function = sine_function(case["function"])
    assert [function.a, function.b, function.c, function.d] == case["function_params"]
    assert DATA_SEEDS[case["seed_index"]] == case["data_seed"]
    dataset = make_dataset(case["function"], case["setting"], case["sampling"],
                           case["data_seed"], protocol="released")
    for name, expected in case["splits"].items():
        split = getattr(dataset, name)
        got = split_stats(split.x, split.y)
        assert got["size"] == expected["size"], name
        for key in expected:
            assert got[key] == pytest.approx(expected[key], rel=1e-10, abs=1e-12), (name, key)


def test_released_split_sizes_follow_the_released_arithmetic():
    """60,000 points: window 58,971 + 6 × 1024 background = 65,115 → thirds of 21,705;
    uniform 59 × 1024 = 60,416 → 20,138 / 20,139 / 20,139."""
    severe = make_dataset(4, "clean", "severe", DATA_SEEDS[1], protocol="released")
    assert (severe.train.x.size, severe.val.x.size, severe.test.x.size) == (21705, 21705, 20139)
    uniform = make_dataset(4, "clean", "uniform", DATA_SEEDS[1], protocol="released")
    assert uniform.train.x.size == 20138
    # The test split is the uniform sampling's, whichever sampling trains.
    np.testing.assert_array_equal(severe.test.x, uniform.test.x)


def test_released_peak_is_shared_across_functions_and_severities():
    """One pool and then one uniform draw per seed: the peak's *relative* position in the
    pool's target range is the same for every function and severity (0.65 for seed 0)."""
    relative = []
    for function_index, sampling in ((0, "mild"), (0, "severe"), (6, "moderate")):
        dataset = make_dataset(function_index, "clean", sampling, DATA_SEEDS[0],
                               protocol="released")
        state = np.random.RandomState(DATA_SEEDS[0])
        pool_y = dataset.function(state.uniform(-1.0, 1.0, size=(100_000, 1)))
        relative.append((dataset.peak - pool_y.min()) / (pool_y.max() - pool_y.min()))
    assert relative == pytest.approx([relative[0]] * 3, abs=1e-12)
    assert relative[0] == pytest.approx(0.65, abs=0.005)


def test_released_ood_intervals_are_not_clipped():
    """Right edges are extended by |N(0, 1/18²)| and clipped at 1 only: an interval may run
    into the next one (of another split), unlike our protocol's disjoint intervals."""
    overlaps = 0
    for seed in DATA_SEEDS:
        ranges = ood_ranges(np.random.RandomState(seed))
        edges = sorted((float(lo), float(hi)) for r in ranges.values() for lo, hi in r.T)
        assert all(hi <= 1.0 for _, hi in edges)
        overlaps += sum(edges[i][1] > edges[i + 1][0] for i in range(len(edges) - 1))
    assert overlaps > 0


def test_released_protocol_needs_enough_points_and_flows_through_the_grid():
    with pytest.raises(InputError, match="num_points >= 6144"):
        make_dataset(0, "clean", "severe", DATA_SEEDS[0], num_points=3000, protocol="released")
    assert min_num_points() == 6144
    grid = grid_from_mapping({"settings": ["clean"], "samplings": ["severe"], "functions": [0],
                              "seeds": [0], "num_classes": [4], "protocol": "released"})
    runs = expand(grid)
    assert {run.recipe.protocol for run in runs} == {"released"}
    assert all(run.key.endswith("/released") for run in runs)
    assert runs[0].config["protocol"] == "released"
    clsreg = expand(grid_from_mapping({"settings": ["clean"], "samplings": ["severe"],
                                       "functions": [0], "seeds": [0], "num_classes": [4]}))
    assert not any(run.key.endswith("/released") for run in clsreg)  # old keys unchanged
