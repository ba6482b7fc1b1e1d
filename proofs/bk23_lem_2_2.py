"""Lemma 2.2 [BK23]: if ReLU(A x) = B ReLU(x) for all x with A, B invertible, then A = B = P D
with P a permutation and D a positive diagonal.

Proof in the library: the intertwiner group of ReLU is derived from max(0, x): continuous and
not affine, so every intertwiner is monomial; the coefficient equations on the sign cases give
S = R_>0 with c(a) = a, verified exactly. Hence A = P D (D > 0) and B = P diag(c(D)) = A. This
holds for every d. We then exercise the constructive proof's test points (-e_k, e_k,
A_ik e_k' - A_ik' e_k) on random exact matrices: every non-PD matrix must be refuted with a
counterexample that re-checks exactly, every PD matrix with B = A proved.
"""

import numpy as np
import sympy as sp

from identifiable import activations
from identifiable.claims import claim
from identifiable.intertwining import check_intertwiner
from identifiable.verdict import Verdict

from ._common import random_rational_matrix, recheck_counterexample


@claim(id="bk23.lem-2.2", source="[BK23] Lemma 2.2 (App. B.1)",
       statement="ReLU(Ax) = B ReLU(x) for all x, A, B invertible => A = B = PD, D > 0",
       expected="proved", method="derived K(ReLU) + exact decisions")
def check() -> Verdict:
    relu = activations.get("relu")
    der = relu.derive()
    if der.status != "proved" or der.witness.kind != "monomial" \
            or der.witness.scalings.kind != "positive" \
            or sp.simplify(der.witness.scalings.partner - der.witness.scalings.symbol) != 0:
        return Verdict.refuted("derived intertwiner group of ReLU is not PD with B = A",
                               counterexample={"derivation": der.to_dict()})
    rng = np.random.default_rng(22)
    n_members = n_refuted = 0
    for _ in range(30):
        d = int(rng.integers(1, 5))
        K = relu.intertwiner_group(d)
        A = K.random_exact(rng)
        v = check_intertwiner(relu, A, A)
        if v.status != "proved":
            return v.but(reason=f"PD matrix not proved: {v.reason}")
        n_members += 1
        for B, label in ((random_rational_matrix(rng, d), "generic A"),
                         (sp.Matrix(A) * sp.diag(*([-1] + [1] * (d - 1))), "negative entry")):
            if K.contains(B):
                continue
            v = check_intertwiner(relu, B, B)
            if v.status != "refuted":
                return Verdict.refuted(f"{label} not refuted",
                                       counterexample={"A": B, "verdict": v.to_dict()})
            if recheck_counterexample(relu, B, B, v.counterexample) < 1e-12:
                return Verdict.refuted("counterexample does not re-check",
                                       counterexample=v.counterexample)
            n_refuted += 1
        Bwrong = sp.Matrix(A) * 2
        v = check_intertwiner(relu, A, Bwrong)
        if v.status != "refuted":
            return Verdict.refuted("B != A not refuted", counterexample={"A": A, "B": Bwrong})
        n_refuted += 1
    return Verdict.proved(
        "K(ReLU) derived exactly as positively scaled permutations with B = A (all d); "
        f"{n_members} PD cases proved, {n_refuted} non-PD cases refuted with re-checked "
        "counterexamples", witness={"scalings": "R_>0", "c(a)": "a"})
