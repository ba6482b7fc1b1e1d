"""Example 2.1 [BK23]: an equivariant ReLU network that is not layerwise equivariant.

``f(x) = W_2 ReLU(W_1 x)`` with ``W_1 = [[1, 0], [0, 0]]``, ``W_2 = 0``, ``G = S_2`` swapping the
inputs (``rho_0(h) = J = [[0, 1], [1, 0]]``, ``rho_2(h) = 1``). The paper predicts that layerwise
equivariance *fails* (expected status: refuted), and that the rewrite ``W~_1 = 0`` is layerwise
equivariant. The check computes:

1. ``f(J x) = f(x)`` exactly (f is constant 0);
2. layerwise equivariance of the original: a representation ``rho_1(h)`` would satisfy
   ``rho_1(h) W_1 = W_1 J``; we solve this linear system for an arbitrary 2 x 2 matrix (more
   general than the scalar of the paper's remark) with sympy: it has no solution, and the
   counterexample is the entry where ``(R W_1)[0, 1] = 0`` for every R while
   ``(W_1 J)[0, 1] = 1``;
3. the rewrite: ``reduce`` (Remark 5.2 [SMBK26]: every neuron is half-dead since ``W_2 = 0``)
   returns ``W~_1 = 0``, ``W~_2 = 0`` with the same function, and that network is layerwise
   equivariant with ``rho_1(h) = I`` (which commutes with ReLU).

The verdict is the refutation of step 2; if step 1 or 3 fails the check answers ``undecided`` so
that ``identifiable verify`` flags it.
"""

import sympy as sp

from identifiable.claims import claim
from identifiable.diagrams import expr_is_zero
from identifiable.identifiability import same_function
from identifiable.intertwining import check_intertwiner
from identifiable.models import MLP
from identifiable.submodels import reduce
from identifiable.verdict import Verdict

J = sp.Matrix([[0, 1], [1, 0]])


def layerwise_equivariant(W1: sp.Matrix, W2: sp.Matrix) -> Verdict:
    """Is there rho_1(h) = R with R W_1 = W_1 J, ReLU(R z) = R ReLU(z) and W_2 R = W_2?"""
    R = sp.Matrix(2, 2, sp.symbols("r11 r12 r21 r22"))
    eqs = list(R * W1 - W1 * J) + list(W2 * R - W2)
    sol = sp.linsolve(eqs, list(R))
    if sol == sp.EmptySet:
        D = R * W1 - W1 * J
        for i in range(2):
            for j in range(2):
                e = sp.expand(D[i, j])
                if e.is_number and e != 0:
                    return Verdict.refuted(
                        f"no rho_1(h): (rho_1(h) W_1)[{i},{j}] - (W_1 J)[{i},{j}] = {e} for every "
                        "2 x 2 matrix rho_1(h)",
                        counterexample={"entry": (i, j), "R_W1": (R * W1)[i, j],
                                        "W1_J": (W1 * J)[i, j]})
        return Verdict.refuted("rho_1(h) W_1 = W_1 J has no solution",
                               counterexample={"equations": [str(e) for e in eqs]})
    # a solution family: try the identity (the rewrite's representation)
    Rs = sp.eye(2)
    if all(sp.expand(e.subs(dict(zip(list(R), list(Rs))))) == 0 for e in eqs):
        v = check_intertwiner("relu", Rs, Rs)
        if v.status == "proved":
            return Verdict.proved("rho_1(h) = I makes every layer equivariant",
                                  witness={"rho_1(h)": Rs})
    return Verdict.undecided(f"solutions {sol} of the linear equations; not resolved")


@claim(id="bk23.ex-2.1", source="[BK23] Example 2.1",
       statement="f = W2 ReLU(W1 x) with W2 = 0 is S_2-invariant but not layerwise equivariant; "
                 "the rewrite W~1 = 0 is",
       expected="refuted", method="exact linear algebra (sympy linsolve), reduce")
def check() -> Verdict:
    m = MLP([2, 2, 1], "relu", bias=False)
    W1, W2 = sp.Matrix([[1, 0], [0, 0]]), sp.Matrix([[0, 0]])
    th = m.params([W1, W2])
    x = sp.Matrix(sp.symbols("x1 x2", real=True))
    inv = expr_is_zero(m.symbolic(th, J * x)[0] - m.symbolic(th, x)[0])
    if inv.status != "proved":
        return Verdict.undecided(f"side condition failed: f is not S_2-invariant ({inv.reason})")
    sub = reduce(m, th)
    thr = sub.embed()
    same = same_function(m, th, thr)
    rewrite = layerwise_equivariant(thr.weights[0], thr.weights[1])
    if thr.weights[0] != sp.zeros(2, 2) or same.status != "proved" or \
            rewrite.status != "proved":
        return Verdict.undecided("side condition failed: the rewrite W~_1 = 0 "
                                 f"({thr.weights[0].tolist()}, same function {same.status}) is "
                                 f"not layerwise equivariant ({rewrite.status})")
    original = layerwise_equivariant(W1, W2)
    if original.status != "refuted":
        return original.but(reason="the original network: " + original.reason)
    return original.but(
        reason="Example 2.1 [BK23]: f is S_2-invariant (f = 0), but " + original.reason
        + "; the rewrite W~_1 = 0 (reduce, same function) is layerwise equivariant with "
          "rho_1(h) = I",
        witness={"rewrite": thr, "rho_1(h)": sp.eye(2), "submodel_widths": sub.model.widths})
