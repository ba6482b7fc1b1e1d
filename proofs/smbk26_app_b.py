"""Appendix B [SMBK26]: a small example of a submodel.

``f(x; theta) = W_2 sigma(W_1 x)`` (no biases) with ``theta_0``: ``W_1 = [[1, 1], [2, 3]]``,
``W_2 = [-2, 0]``, and ``G = S_2`` swapping the two inputs (``J = [[0, 1], [1, 0]]``). We check,
for tanh (where Sussmann's theorem decides weak identifiability) and for the generic activation
``sigma(x) = x + x^2`` (whose intertwiner group is exactly ``S_2``, as the appendix assumes):

1. ``K_1`` is derived: ``S_2`` for ``x + x^2`` (signed permutations for tanh);
2. ``f(J x; theta_0) = f(x; theta_0)`` exactly (the function ``-2 sigma(x_1 + x_2)`` is invariant);
3. layer 1 is not S_2-equivariant for any linear action on ``V_1``: ``W_1`` is invertible, so a
   ``C`` with ``C sigma(W_1 x) = sigma(W_1 J x)`` would make ``R = W_1 J W_1^{-1} =
   [[1, 0], [5, -1]]`` an intertwiner of sigma, and ``check_intertwiner`` refutes that (R is not
   monomial) with a concrete point; by Theorem 4.1 and Remark 4.2 ``theta_0`` is therefore not
   weakly identifiable, and ``weakly_identifiable`` says so too (tanh);
4. ``theta'_0`` of Remark 5.2 (``W'_1 = [[1, 1], [0, 0]]``) is what ``reduce`` produces, with the
   same function, and the submodel ``V~_1 = R`` (``W~_1 = [1, 1]``, ``W~_2 = -2``) satisfies
   Definition 3.2: diagrams (20) and (21) commute for all submodel parameters;
5. ``W'_1 J = W'_1``, so both layers of ``theta'_0`` are S_2-equivariant with the trivial action
   on ``V_1``; ``weakly_identifiable(theta'_0)`` is proved (tanh).

(Diagram (21) of the paper prints ``f_2`` as ``-2 sigma(z_1)``; the last layer is affine,
``f_2(z) = -2 z_1``, which is what we check.)
"""

import sympy as sp

from identifiable import activations
from identifiable.claims import claim
from identifiable.diagrams import expr_is_zero
from identifiable.identifiability import same_function, weakly_identifiable
from identifiable.intertwining import check_intertwiner
from identifiable.models import MLP
from identifiable.submodels import reduce
from identifiable.verdict import Verdict

J = sp.Matrix([[0, 1], [1, 0]])
W1, W2 = sp.Matrix([[1, 1], [2, 3]]), sp.Matrix([[-2, 0]])
x = sp.Matrix(sp.symbols("x1 x2", real=True))
t = sp.Symbol("t")
GENERIC = activations.from_sympy(t + t**2, t, "x + x^2")


def _fail(what: str, v: Verdict) -> Verdict:
    if v.status == "refuted":
        return Verdict.refuted(what + ": " + v.reason, counterexample=v.counterexample)
    return v.but(reason=what + ": " + v.reason)


@claim(id="smbk26.app-b", source="[SMBK26] App. B",
       statement="theta_0 invariant but layer 1 not S_2-equivariant, not weakly identifiable; "
                 "theta'_0 (Rem. 5.2) is a submodel parameter, W'_1 g = W'_1",
       expected="proved", method="exact: sympy, derived K, reduce, diagrams (20)-(21)")
def check() -> Verdict:
    witness = {}
    for act in ("tanh", GENERIC):
        m = MLP([2, 2, 1], act, bias=False)
        name = m.activations[0].name
        K = m.latent_group(1)
        want = "sign" if name == "tanh" else "one"
        if K.scalings.kind != want:
            return Verdict.refuted(f"{name}: K_1 = {K.name}", counterexample={"K": K.name})
        th0 = m.params([W1, W2])
        # 2. invariance of f
        v = expr_is_zero(m.symbolic(th0, J * x)[0] - m.symbolic(th0, x)[0])
        if v.status != "proved":
            return _fail(f"{name}: f(Jx) = f(x)", v)
        # 3. no linear action on V_1 makes layer 1 equivariant
        R = W1 * J * W1.inv()
        vr = check_intertwiner(m.activations[0], R, R)
        if R != sp.Matrix([[1, 0], [5, -1]]) or vr.status != "refuted" or K.contains(R):
            return Verdict.refuted(f"{name}: R = W_1 J W_1^-1 is an intertwiner",
                                   counterexample={"R": R, "verdict": vr.to_dict()})
        # 4. Remark 5.2 zeroing and the submodel
        sub = reduce(m, th0)
        thp = sub.embed()
        if thp.weights[0] != sp.Matrix([[1, 1], [0, 0]]) or thp.weights[1] != W2 \
                or sub.model.widths != [2, 1, 1] or sub.theta.weights[0] != sp.Matrix([[1, 1]]):
            return Verdict.refuted(f"{name}: reduce gave {thp.weights}",
                                   counterexample={"theta_prime": thp})
        vs = same_function(m, th0, thp)
        if vs.status != "proved":
            return _fail(f"{name}: f(theta'_0) = f(theta_0)", vs)
        for i in (1, 2):
            vd = sub.diagram(i).commutes()
            if vd.status != "proved":
                return _fail(f"{name}: diagram ({19 + i})", vd)
        vc = sub.check()
        if vc.status != "proved":
            return _fail(f"{name}: Definition 3.2 and eq. (2)", vc)
        # 5. W'_1 g = W'_1: layer 1 equivariant with the trivial action on V_1
        if thp.weights[0] * J != thp.weights[0]:
            return Verdict.refuted("W'_1 J != W'_1", counterexample={"W1'": thp.weights[0]})
        f1 = m.layers[0].symbolic
        ve = expr_is_zero((f1(J * x, thp[0]) - f1(x, thp[0]))[0])
        if ve.status != "proved":
            return _fail(f"{name}: f_1(Jx; theta'_0) = f_1(x; theta'_0)", ve)
        entry = {"K_1": K.name, "R": R.tolist(), "intertwiner_counterexample":
                 vr.counterexample.get("x"), "theta_prime_W1": thp.weights[0].tolist()}
        if name == "tanh":
            w0, w1 = weakly_identifiable(m, th0), weakly_identifiable(m, thp)
            if w0.status != "refuted" or w1.status != "proved":
                return Verdict.refuted(f"tanh: weakly identifiable theta_0 {w0.status}, "
                                       f"theta'_0 {w1.status}",
                                       counterexample={"theta_0": w0.to_dict()})
            entry.update(theta_0=w0.status, theta_prime_0=w1.status)
        witness[name] = entry
    return Verdict.proved(
        "Appendix B: theta_0 is S_2-invariant, its first layer admits no linear S_2-action "
        "(R = [[1,0],[5,-1]] is no intertwiner), so theta_0 is not weakly identifiable "
        "(Thm. 4.1, Rem. 4.2; library: refuted); theta'_0 = reduce(theta_0) has the same "
        "function, diagrams (20)-(21) commute, W'_1 J = W'_1, weakly identifiable (tanh)",
        witness=witness)
