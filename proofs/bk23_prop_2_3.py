"""Proposition 2.3 [BK23]: for invertible W1, W2, f(x) = W2 ReLU(W1 x) is equivariant for
(rho0, rho2) iff rho0(g) = W1^-1 P(g) D(g) W1 and rho2(g) = W2 P(g) D(g) W2^-1 (P a
permutation, D a positive diagonal); f is then layerwise equivariant with rho1 = P D.

How the claim is checked: the proof reduces the statement to Lemma 2.2 (the intertwiners of
ReLU are the positively scaled permutations, with B = A), which the library derives exactly
from max(0, x); we re-check that derivation. Then :func:`identifiable.relu.prop_2_3` is run on
generated exact cases:

* "yes": random invertible rational W1, W2 and a PD representation rho1 = D P D^-1 of a random
  permutation group (cyclic, dihedral, symmetric, or one involution) conjugated into
  rho0 = W1^-1 rho1 W1. The verdict must be proved, its rho1 must equal D P(g) D^-1 on every
  element, and f(rho0(g) x) = rho2(g) f(x) must hold exactly at random rational x; with the
  right rho2 given it must be proved, with a wrong rho2 (another PD conjugate) refuted with a
  counterexample x that re-checks exactly.
* "no": rho1 a non-PD involution (a signed permutation with a -1, or a random conjugate of the
  swap), refuted with an x where f(rho0(g) x) != rho2(g) f(x) for the only candidate rho2 and
  a y with ReLU(rho1 y) != rho1 ReLU(y), both re-checked exactly.
"""

import numpy as np
import sympy as sp

from identifiable import activations, groups
from identifiable.claims import claim
from identifiable.relu import prop_2_3
from identifiable.verdict import Verdict

from ._common import random_rational_matrix


def _relu(v):
    return sp.Matrix(v).applyfunc(lambda t: sp.Max(0, t))


def _f(W1, W2, x):
    return W2 * _relu(W1 * sp.Matrix(x))


def _random_perm_group(rng, m):
    kind = rng.choice(["cyclic", "dihedral", "symmetric", "involution"])
    if kind == "cyclic":
        return groups.cyclic(m)
    if kind == "dihedral" and m >= 3:
        return groups.dihedral(m)
    if kind == "symmetric" and m <= 4:
        return groups.symmetric(m)
    p = list(range(m))
    i, j = rng.choice(m, size=2, replace=False)
    p[i], p[j] = p[j], p[i]
    return groups.Rep.from_permutations([p])


def _positive_diag(rng, m):
    return sp.diag(*[sp.Rational(int(rng.integers(1, 6)), int(rng.integers(1, 4)))
                     for _ in range(m)])


def _product(mats, word):
    out = sp.eye(mats[0].shape[0])
    if word != "e":
        for t in word.split("*"):
            out = out * mats[int(t[1:])]
    return out


@claim(id="bk23.prop-2.3", source="[BK23] Proposition 2.3",
       statement="W1, W2 invertible: W2 ReLU(W1 x) is G-equivariant iff W1 rho0 W1^-1 = PD "
                 "(and rho2 = W2 PD W2^-1); then layerwise equivariant with rho1 = PD",
       expected="proved", method="Lemma 2.2 (derived) + exact decisions on generated cases")
def check() -> Verdict:
    relu = activations.get("relu")
    der = relu.derive()
    if der.status != "proved" or der.witness.scalings.kind != "positive":
        return Verdict.refuted("ReLU's intertwiners are not derived as PD matrices",
                               counterexample={"derivation": der.to_dict()})
    rng = np.random.default_rng(23)
    n_yes = n_no = n_wrong_rho2 = 0
    for _ in range(16):
        m = int(rng.integers(2, 5))
        W1, W2 = random_rational_matrix(rng, m), random_rational_matrix(rng, m)
        W1i, W2i = W1.inv(), W2.inv()
        G = _random_perm_group(rng, m)
        D = _positive_diag(rng, m)
        rho1 = [D * sp.Matrix(P) * D.inv() for P in G.generators]
        rho0 = [W1i * A * W1 for A in rho1]
        v = prop_2_3(W1, W2, rho0)
        if v.status != "proved":
            return Verdict.refuted("PD case not proved", counterexample={"W1": W1, "W2": W2,
                                                                         "rho0": rho0,
                                                                         "verdict": v.to_dict()})
        for word, A in v.witness["rho1"].items():
            if sp.Matrix(A) != _product(rho1, word):
                return Verdict.refuted("witness rho1 differs from D P D^-1",
                                       counterexample={"word": word, "rho1": A})
        for word in v.witness["rho1"]:
            g0 = _product(rho0, word)
            R2 = sp.Matrix(v.witness["rho2"][word])
            for _ in range(3):
                x = sp.Matrix([sp.Rational(int(rng.integers(-9, 10)), 4) for _ in range(m)])
                if _f(W1, W2, g0 * x) != R2 * _f(W1, W2, x):
                    return Verdict.refuted("f(rho0(g) x) != rho2(g) f(x) for the witness",
                                           counterexample={"word": word, "x": x})
        right = [W2 * A * W2i for A in rho1]
        if prop_2_3(W1, W2, rho0, right).status != "proved":
            return Verdict.refuted("the right rho2 is not proved", counterexample={"W1": W1})
        n_yes += 1
        D2 = _positive_diag(rng, m)
        wrong = [W2 * D2 * sp.Matrix(P) * D2.inv() * W2i for P in G.generators]
        if any(a != b for a, b in zip(wrong, right)):
            w = prop_2_3(W1, W2, rho0, wrong)
            cex = w.counterexample if w.status == "refuted" else None
            if cex is None:
                return Verdict.refuted("a wrong rho2 was not refuted",
                                       counterexample={"W1": W1, "W2": W2, "rho2": wrong})
            k = G.words.index(cex["generator"])
            g0 = _product(rho0, G.words[k])
            R2 = _product(wrong, G.words[k])
            x = sp.Matrix(cex["x"])
            if _f(W1, W2, g0 * x) == R2 * _f(W1, W2, x):
                return Verdict.refuted("counterexample for a wrong rho2 does not re-check",
                                       counterexample=cex)
            n_wrong_rho2 += 1
        # "no": a non-PD involution on the hidden layer
        if rng.random() < 0.5:
            Q = sp.eye(m)
            Q[0, 0] = -1
            Q = sp.Matrix(groups.matrix_of_permutation(rng.permutation(m))) * Q
            Q = Q if Q * Q == sp.eye(m) else sp.diag(*([-1] + [1] * (m - 1)))
        else:
            C = random_rational_matrix(rng, m)
            S = sp.eye(m)
            S[0, 0], S[0, 1], S[1, 0], S[1, 1] = 0, 1, 1, 0
            Q = C * S * C.inv()
        if relu.intertwiner_group(m).contains(Q):
            continue
        v = prop_2_3(W1, W2, [W1i * Q * W1])
        if v.status != "refuted":
            return Verdict.refuted("non-PD rho1 not refuted", counterexample={"Q": Q})
        cex = v.counterexample
        if "y" not in cex:
            return Verdict.refuted("non-PD rho1 refuted without a y", counterexample=cex)
        y, x = sp.Matrix(cex["y"]), sp.Matrix(cex["x"])
        if _relu(Q * y) == Q * _relu(y) or \
                _f(W1, W2, W1i * Q * W1 * x) == W2 * Q * W2i * _f(W1, W2, x):
            return Verdict.refuted("non-PD counterexample does not re-check", counterexample=cex)
        n_no += 1
    return Verdict.proved(
        "Lemma 2.2 re-derived (K(ReLU) = PD, B = A), which is the whole proof for invertible "
        f"W1, W2; on generated exact cases {n_yes} PD representations proved with rho1 = D P "
        f"D^-1 and f equivariant at random x, {n_wrong_rho2} wrong rho2 and {n_no} non-PD rho1 "
        "refuted with counterexamples re-checked exactly",
        witness={"pd_cases": n_yes, "wrong_rho2": n_wrong_rho2, "non_pd": n_no})
