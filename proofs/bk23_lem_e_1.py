"""Lemma E.1 [BK23]: if ReLU(A x + a) = B ReLU(x) + b for all x, with A, B invertible, then
a = b = 0.

Exact proof: ReLU is continuous and not affine, so A is monomial and B has A's support; each
row then reads relu(alpha t + beta) = gamma relu(t) + delta for all real t, with alpha, gamma
non-zero. On the regimes t -> +oo and t -> -oo both sides are affine in t, so their coefficients
must agree; solving these linear equations symbolically for both signs of alpha (sympy) leaves
only beta = delta = 0. We then check the affine decision on random exact cases: every case
with a != 0 or b != 0 is refuted with a counterexample that re-checks exactly.
"""

import numpy as np
import sympy as sp

from identifiable import activations
from identifiable.claims import claim
from identifiable.intertwining import check_affine_intertwiner
from identifiable.verdict import Verdict

from ._common import recheck_counterexample


def _row_solutions():
    t = sp.Symbol("t", real=True)
    beta, delta = sp.symbols("beta delta", real=True)
    gamma = sp.Symbol("gamma", real=True, nonzero=True)
    sols = []
    for alpha in (sp.Symbol("alpha", positive=True), sp.Symbol("alpha", negative=True)):
        # t -> +oo: relu(t) = t; alpha t + beta -> sign(alpha) * oo
        lhs_pos = alpha * t + beta if alpha.is_positive else sp.Integer(0)
        lhs_neg = sp.Integer(0) if alpha.is_positive else alpha * t + beta
        eqs = []
        for lhs, rhs in ((lhs_pos, gamma * t + delta), (lhs_neg, delta)):
            diff = sp.Poly(sp.expand(lhs - rhs), t)
            eqs += list(diff.all_coeffs())
        sols.append((alpha, sp.solve(eqs, [beta, delta, gamma, alpha], dict=True)))
    return sols


@claim(id="bk23.lem-e.1", source="[BK23] Lemma E.1 (App. E)",
       statement="ReLU(Ax + a) = B ReLU(x) + b for all x, A, B invertible => a = b = 0",
       expected="proved", method="exact asymptotic regimes + exact decisions")
def check() -> Verdict:
    relu = activations.get("relu")
    der = relu.derive()
    if der.status != "proved" or der.witness.kind != "monomial":
        return der.but(reason="ReLU's intertwiners are not derived monomial")
    witness = {}
    for alpha, sols in _row_solutions():
        sign = "alpha > 0" if alpha.is_positive else "alpha < 0"
        for s in sols:
            beta = [v for k, v in s.items() if k.name == "beta"]
            delta = [v for k, v in s.items() if k.name == "delta"]
            if (beta and beta[0] != 0) or (delta and delta[0] != 0) or not beta or not delta:
                return Verdict.refuted(f"{sign}: a solution with non-zero offsets {s}",
                                       counterexample=s)
        witness[sign] = [str(s) for s in sols] or "no solution (gamma would vanish)"
    rng = np.random.default_rng(5)
    n = 0
    for _ in range(25):
        d = int(rng.integers(1, 4))
        K = relu.intertwiner_group(d)
        A = K.random_exact(rng)
        a = sp.Matrix([sp.Rational(int(rng.integers(-3, 4)), 2) for _ in range(d)])
        b = sp.Matrix([sp.Rational(int(rng.integers(-3, 4)), 2) for _ in range(d)])
        if a.is_zero_matrix and b.is_zero_matrix:
            continue
        v = check_affine_intertwiner(relu, A, a, A, b)
        if v.status != "refuted" or recheck_counterexample(relu, A, A, v.counterexample,
                                                           a, b) < 1e-12:
            return Verdict.refuted("non-zero offsets not refuted",
                                   counterexample={"A": A, "a": a, "b": b})
        n += 1
    return Verdict.proved(f"per-row regimes force beta = delta = 0 for both signs of alpha; "
                          f"{n} random cases with offsets refuted with re-checked "
                          "counterexamples", witness=witness)
