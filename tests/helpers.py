"""Plain helpers and constants shared by the test files (``from helpers import ...``; pytest puts
``tests/`` on ``sys.path`` for ``conftest.py``). Settings profiles live in ``conftest.py``."""

import os

import numpy as np
import sympy as sp

# ---------------------------------------------------------------------------- exact numbers
#: exact zeros that do not look like zero
Z1 = (sp.sqrt(2) + sp.sqrt(3)) ** 2 - 5 - 2 * sp.sqrt(6)  # = 0 (radicals)
Z2 = sp.cos(sp.pi / 7) - sp.cos(2 * sp.pi / 7) + sp.cos(3 * sp.pi / 7) - sp.Rational(1, 2)  # = 0
Z3 = sp.log(6) - sp.log(2) - sp.log(3)  # = 0 (logarithms)
#: a non-zero number below float resolution
TINY = sp.sqrt(2) - sp.Rational(1414213562373095048801688724, 10**27)  # ~ 4e-28, not 0


def fl(M) -> np.ndarray:
    """An exact (sympy) matrix as a float array of the same shape."""
    return np.array(sp.Matrix(M).evalf().tolist(), float).reshape(np.shape(M))


# ---------------------------------------------------------------------------- models
def power_net_with_zero_output_bias():
    """``(model, theta, theta2)``: a ``power:3`` MLP [1, 2, 1] with output bias 0 and a second
    parameter with the same function that no element of K relates to ``theta`` (the power-net
    defect the soundness and fuzz suites reproduce)."""
    import identifiable as idf

    m = idf.MLP([1, 2, 1], "power:3")
    th = m.params([[[1], [1]], [[1, -1]]], [[1, -1], [0]])
    th2 = m.params([[[1], [1]], [[sp.Rational(1, 2), sp.Rational(-1, 2)]]], [[2, -2], [-6]])
    return m, th, th2


# ---------------------------------------------------------------------------- files
class Evil:
    """A pickle payload: unpickling it would run ``touch marker`` (the loaders must refuse it
    before that happens)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
