"""Example C.1 [BK23]: for s(x) = |x|, a distribution mu symmetric about 0, S_2 acting by -1 on
the input and trivially on the output, and hidden width 1, every layerwise-equivariant net
W2 ReLU(W1 x) is the zero function, while the non-equivariant W1 = W2 = 1 has half its error;
with hidden width 2 a layerwise-equivariant net fits |x| exactly.

How the claim is checked (all exact, sympy): :func:`identifiable.relu.ex_c_1` solves the width-1
equivariance constraints (rho1(h) > 0 by Lemma 2.2, rho1(h)^2 = 1, rho1(h) W1 = -W1, hence
W1 = 0), proves the pointwise identity |c ReLU(x) - |x|| = |c - 1| ReLU(x) + ReLU(-x) on both
sign cases, shows the resulting error |c - 1| m_+ + m_- is minimal at c = 1 with value
m_- = E|X| / 2, and checks the width-2 net W1 = (1, -1)^T, W2 = (1, 1), rho1(h) = J. We run it
for a general symmetric mu (m = E[ReLU(X)] a positive symbol), for Uniform(-1, 1), Normal(0, 1),
Laplace(0, 1) and a finite symmetric sample, with the paper's absolute loss and with the squared
loss; and re-compute the error of the paper's f~ = ReLU(x) and of f = 0 on Uniform(-1, 1) by
direct integration of |f~(t) - |t|| against the density. A non-symmetric distribution must be
rejected.
"""

import sympy as sp
import sympy.stats as st

from identifiable.claims import claim
from identifiable.relu import ex_c_1
from identifiable.verdict import Verdict


@claim(id="bk23.ex-c.1", source="[BK23] Example C.1 (App. C)",
       statement="s(x) = |x|, width 1: layerwise-equivariant nets are 0 and have twice the error "
                 "of W1 = W2 = 1; width 2: an equivariant net fits exactly",
       expected="proved", method="exact (sympy): constraints, sign cases, exact expectations")
def check() -> Verdict:
    dists = [None, st.Uniform("U", -1, 1), st.Normal("N", 0, 1), st.Laplace("L", 0, 1),
             [-3, -1, sp.Rational(-1, 2), sp.Rational(1, 2), 1, 3]]
    values = {}
    for dist in dists:
        for loss in ("abs", "squared"):
            v = ex_c_1(dist, loss=loss)
            if v.status != "proved" or v.witness["ratio"] != sp.Rational(1, 2) \
                    or v.witness["width2_equivariant_error"] != 0:
                return Verdict.refuted(f"Example C.1 fails for {dist} ({loss})",
                                       counterexample={"verdict": v.to_dict()})
            values[(v.witness["distribution"], loss)] = (v.witness["equivariant_width1_error"],
                                         v.witness["best_width1_error"])
    # independent: the paper's f~ = ReLU(x) and f = 0 on Uniform(-1, 1), by direct integration
    t = sp.Symbol("t", real=True)
    pdf = sp.Rational(1, 2)
    f_tilde = sp.integrate(sp.Abs(sp.Max(0, t) - sp.Abs(t)) * pdf, (t, -1, 1))
    f_zero = sp.integrate(sp.Abs(t) * pdf, (t, -1, 1))
    eq, best = values[(ex_c_1(dists[1]).witness["distribution"], "abs")]
    if sp.simplify(f_tilde - best) != 0 or sp.simplify(f_zero - eq) != 0:
        return Verdict.refuted("direct integration disagrees with ex_c_1 on Uniform(-1, 1)",
                               counterexample={"f_tilde": f_tilde, "f_zero": f_zero,
                                               "ex_c_1": (eq, best)})
    try:
        ex_c_1([-1, 2])
    except ValueError:
        pass
    else:
        return Verdict.refuted("a non-symmetric sample was accepted",
                               counterexample={"sample": [-1, 2]})
    return Verdict.proved(
        "width-1 layerwise equivariance forces W1 = 0; the best width-1 error is exactly 1/2 "
        "of the equivariant one for a general symmetric mu and for Uniform, Normal, Laplace and "
        "a finite sample (absolute and squared loss); the width-2 equivariant net fits |x| "
        f"exactly; direct integration on Uniform(-1, 1) gives {f_tilde} vs {f_zero}",
        witness={f"{k[0]} ({k[1]})": {"equivariant": e, "best": b}
                 for k, (e, b) in values.items()})
