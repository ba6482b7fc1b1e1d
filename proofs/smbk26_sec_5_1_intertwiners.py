"""Section 5.1 [SMBK26]: the intertwiner groups K of eq. (8) for common activations.

The paper states: linear sigma gives GL(d); powers t^m allow all rescalings; ReLU only positive
ones; odd or even activations such as tanh only sign flips; the sigmoidal family only
permutations. The library *derives* each group from the activation's expression
(:meth:`Activation.derive`) and we compare the derivation with the paper, then exercise each
derived group with exact intertwiner decisions on random members (must be proved) and on
random non-members (must be refuted with a counterexample that re-checks exactly).
"""

import numpy as np
import sympy as sp

from identifiable import activations
from identifiable.claims import claim
from identifiable.intertwining import check_intertwiner
from identifiable.verdict import Verdict

from ._common import recheck_counterexample

a = sp.Symbol("a", real=True, nonzero=True)
EXPECTED = {  # name -> (kind, scaling set, c(a))
    "identity": ("linear", None, None),
    "relu": ("monomial", "positive", a),
    "tanh": ("monomial", "sign", a),
    "power:2": ("monomial", "nonzero", a**2),
    "power:3": ("monomial", "nonzero", a**3),
    "sigmoid": ("monomial", "one", None),
}


@claim(id="smbk26.sec-5.1-intertwiners", source="[SMBK26] Sec. 5.1, eq. (8)",
       statement="K(identity)=GL, K(x^m) all monomials, K(ReLU) positive-scaled, "
                 "K(tanh) signed, K(sigmoid) permutations",
       expected="proved", method="derived from expression + exact decisions")
def check() -> Verdict:
    rng = np.random.default_rng(51)
    table = {}
    for name, (kind, skind, partner) in EXPECTED.items():
        act = activations.get(name)
        der = act.derive()
        if der.status != "proved":
            return der.but(reason=f"{name}: derivation {der.status}: {der.reason}")
        w = der.witness
        if w.kind != kind or (skind and w.scalings.kind != skind) or (
                partner is not None and sp.simplify(w.scalings.partner - partner) != 0):
            return Verdict.refuted(f"{name}: derived {w} differs from Section 5.1",
                                   counterexample={"activation": name, "derived": repr(w)})
        for d in (1, 2, 3):
            K = act.intertwiner_group(d)
            A = K.random_exact(rng) if kind == "monomial" else sp.Matrix(
                [[1, 2, 0], [0, 1, 0], [1, 0, 1]][:d]).extract(list(range(d)), list(range(d)))
            B = K.partner(A)
            v = check_intertwiner(act, A, B)
            if v.status != "proved":
                return v.but(reason=f"{name}, d={d}: member not proved: {v.reason}")
            if kind == "monomial" and d >= 2:  # a generic non-member
                N = sp.Matrix(A) + sp.Matrix(d, d, lambda i, j: 1 if (i, j) == (0, 1) else 0)
                if N.rank() == d:
                    v = check_intertwiner(act, N, B)
                    if v.status != "refuted" or recheck_counterexample(
                            act, N, B, v.counterexample) < 1e-12:
                        return Verdict.refuted(f"{name}: non-member not refuted",
                                               counterexample={"A": N, "verdict": v.to_dict()})
        table[name] = act.intertwiner_group(4).name
    return Verdict.proved("derived groups match Section 5.1 and decide members/non-members "
                          "exactly", witness=table)
