"""Issue 11, items 5 and 10: size guards and bad model inputs, each from its reproducer.

Budgets: ``weakly_identifiable`` on [250, 250, 1] used to run for minutes (10x per doubling of
the width in ``Submodel.check_gamma``); ``functional_dimension`` on [5000, 5000, 1] tried to
allocate 2.7 TiB; a ``Rep`` with an exact generator of infinite order enumerated ``max_order``
elements (tests/test_groups.py has those).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import identifiable as idf


def test_weakly_identifiable_at_width_250_takes_seconds():
    """float theta, [250, 250, 1]: 62,750 parameters; about 7 s of CPU on the project's machine
    (the bound leaves room for a loaded CI runner), against minutes before."""
    m = idf.MLP([250, 250, 1], "tanh")
    th = m.random_params(0)
    t0 = time.process_time()
    v = idf.weakly_identifiable(m, th)
    assert v.status == "checked"
    assert time.process_time() - t0 < 90


def test_functional_dimension_refuses_a_jacobian_beyond_its_budget():
    m = idf.MLP([5000, 5000, 1], "tanh")
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"GiB, above max_bytes"):
        idf.functional_dimension(m, m.random_params(0))
    assert time.perf_counter() - t0 < 30


def test_widths_must_be_integers_not_booleans():
    with pytest.raises(TypeError, match=r"widths: expected a list of integers"):
        idf.MLP([2, True, 1], "tanh")


def test_biases_of_a_bias_free_model_are_refused():
    m = idf.MLP([2, 3, 1], "tanh", bias=False)
    with pytest.raises(ValueError, match="bias=False; pass biases=None"):
        m.params([np.ones((3, 2)), np.ones((1, 3))], [np.ones(3), np.ones(1)])


@pytest.mark.parametrize("x", [[[1, 2], [3]], [["a", "b"]]], ids=["ragged", "strings"])
def test_forward_names_x_on_bad_input(x):
    m = idf.MLP([2, 3, 1], "tanh")
    with pytest.raises(ValueError, match=r"^x: expected numbers of shape \(n, 2\)"):
        m.forward(x, m.random_params(0))
