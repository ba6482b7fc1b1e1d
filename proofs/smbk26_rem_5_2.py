"""Remark 5.2 [SMBK26]: half-dead neurons, and zeroing them.

A hidden neuron whose outgoing column of ``W_{i+1}`` vanishes while its row of ``[W_i | b_i]``
does not (or the converse) makes the parameter non-identifiable and keeps it out of every
submodel; zeroing the non-vanishing part gives ``theta'`` with the same function that comes from a
submodel.

On seeded random exact MLPs (tanh, ReLU, x^3, GELU; one and two hidden layers) with a planted
half-dead neuron of each kind we check:

1. ``f(.; theta') = f(.; theta)`` exactly (sympy expressions), ``theta' = reduce(theta).embed()``;
2. ``align(theta, theta')`` is refuted: no element of K relates two parameters with the same
   function, so ``theta`` is not identifiable;
3. ``reduce(theta)`` is a submodel: ``check()`` (Definition 3.2 and eq. (2)) proved, and
   ``theta'`` is exactly ``beta(theta~)``;
4. for tanh (where a theorem applies): ``weakly_identifiable(theta)`` is refuted (the half-dead
   neuron is no copy of another, so every submodel of eq. (9) with ``beta(theta~) = theta`` has
   a half-dead neuron too) while ``weakly_identifiable(theta')`` is proved (Sussmann 1992 /
   Vlacic-Bolcskei 2021 on the reduced parameter).
"""

import numpy as np
import sympy as sp

from identifiable.claims import claim
from identifiable.identifiability import align, same_function, weakly_identifiable
from identifiable.models import MLP
from identifiable.submodels import reduce
from identifiable.verdict import Verdict


def planted(model: MLP, seed: int, kind: str):
    th = model.random_params(seed, exact=True)
    Ws = [sp.Matrix(W) for W in th.weights]
    bs = [sp.Matrix(b) for b in th.biases]
    i = 1 + seed % (model.depth - 1)
    r = seed % model.widths[i]
    if kind == "column":  # zero outgoing column, non-zero row
        Ws[i][:, r] = sp.zeros(Ws[i].shape[0], 1)
    else:  # zero row and bias, non-zero outgoing column
        Ws[i - 1][r, :] = sp.zeros(1, Ws[i - 1].shape[1])
        bs[i - 1][r] = 0
    return model.params(Ws, bs), (i, r)


@claim(id="smbk26.rem-5.2", source="[SMBK26] Remark 5.2",
       statement="half-dead neurons: theta not identifiable / from no submodel; zeroing keeps f "
                 "and gives a submodel parameter",
       expected="proved", method="exact function equality, align, submodel check")
def check() -> Verdict:
    n = 0
    for act in ("tanh", "relu", "power:3", "gelu"):
        for widths in ([2, 3, 1], [2, 3, 2, 1]):
            for seed, kind in ((1, "column"), (2, "row"), (3, "column")):
                m = MLP(widths, act)
                th, where = planted(m, seed, kind)
                sub = reduce(m, th)
                thp = sub.embed()
                if thp.equals(th):
                    return Verdict.refuted("zeroing did not change the parameter",
                                           counterexample={"activation": act, "where": where})
                vs = same_function(m, th, thp)
                if vs.status != "proved":
                    return vs.but(reason=f"{act} {widths}: f(theta') vs f(theta): {vs.reason}") \
                        if vs.status != "refuted" else Verdict.refuted(
                        "zeroing changed the function", counterexample=vs.counterexample)
                va = align(m, th, thp)
                if va.status != "refuted":
                    return Verdict.refuted(f"{act}: theta' = k . theta ({va.status})",
                                           counterexample={"where": where})
                vc = sub.check()
                if vc.status != "proved":
                    return Verdict.refuted(f"{act}: reduce(theta) is no submodel: {vc.reason}",
                                           counterexample=vc.counterexample or {"where": where})
                X = np.random.default_rng(seed).standard_normal((20, widths[0]))
                if not np.allclose(m(X, th), sub.model(X, sub.theta)):
                    return Verdict.refuted("the submodel computes another function",
                                           counterexample={"x": X[0].tolist()})
                if act == "tanh":
                    w0, w1 = weakly_identifiable(m, th), weakly_identifiable(m, thp)
                    if w0.status != "refuted" or w1.status != "proved":
                        return Verdict.refuted(
                            f"tanh: weakly identifiable theta {w0.status}, theta' {w1.status}",
                            counterexample={"where": where, "widths": widths})
                n += 1
    return Verdict.proved(f"{n} planted half-dead neurons (both kinds): zeroing keeps f exactly, "
                          "theta' is not k . theta, reduce(theta) is a submodel with "
                          "beta(theta~) = theta'; for tanh theta is not weakly identifiable and "
                          "theta' is", witness={"cases": n})
