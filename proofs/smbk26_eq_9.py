"""Eq. (9) [SMBK26]: rectangular intertwiners give submodels.

If ``A_i sigma(y) = sigma(B_i y)`` for all y (a *rectangular intertwiner*, ``B_i`` of size
``d_i x d~_i``), then ``W_i = B_i W~_i A*_{i-1}``, ``b_i = B_i b~_i`` satisfy eq. (9),
``A_i sigma(W~_i A*_{i-1} x + b~_i) = sigma(W_i x + b_i)``, for every submodel parameter: the
maps define a submodel.

For random rectangular intertwiners (seeded) of tanh, ReLU, x^2, x^3, GELU and a linear
activation (monomial rows with allowed scalings or zero rows; a random injective B for the linear
one) we check exactly

1. the intertwiner identity ``A sigma(y) = sigma(B y)`` row by row in symbols y
   (``A = P diag(c(b))`` is derived from ``B`` by the partner map of the activation);
2. eq. (9) for all submodel parameters: the Definition 3.2 diagram of the built submodel, with
   ``W~, b~, x`` as sympy symbols;
3. negative controls: a row with a scaling outside the allowed set (tanh: 2, ReLU: -1) or with two
   non-zero entries, paired with the naive ``A = B``, fails the intertwiner identity and the
   diagram (refuted, with a point).

Status: ``checked``: each intertwiner is decided exactly (for all submodel parameters), but the
claim quantifies over all rectangular intertwiners and the library verifies finitely many.
"""

import numpy as np
import sympy as sp

from identifiable.claims import claim
from identifiable.diagrams import expr_is_zero
from identifiable.models import MLP
from identifiable.submodels import Submodel, from_intertwiners
from identifiable.verdict import Verdict

ACTS = ["tanh", "relu", "power:2", "power:3", "gelu", "identity"]


def random_B(rng: np.random.Generator, act: str, d: int, dt: int) -> sp.Matrix:
    if act == "identity":
        while True:
            B = sp.Matrix(d, dt, lambda i, j: int(rng.integers(-2, 3)))
            if B.rank() == dt:
                return B
    S = MLP([1, 1, 1], act).latent_group(1).scalings
    B = sp.zeros(d, dt)
    rows = list(rng.permutation(d))
    for k in range(dt):  # every submodel neuron has a copy
        B[rows[k], k] = 1
    for r in rows[dt:]:
        if rng.random() < 0.3:
            continue  # inactive neuron
        k = int(rng.integers(0, dt))
        a = {"one": 1, "sign": int(rng.choice([-1, 1])),
             "positive": sp.Rational(int(rng.integers(1, 5)), int(rng.integers(1, 4))),
             "nonzero": sp.Rational(int(rng.choice([-3, -1, 2, 3])), int(rng.integers(1, 3)))
             }[S.kind]
        B[r, k] = a
    return B


def intertwiner_identity(act_name: str, A, B) -> Verdict:
    act = MLP([1, 1, 1], act_name).activations[0]
    y = sp.Matrix(sp.symbols(f"y1:{B.shape[1] + 1}", real=True))
    lhs = sp.Matrix(A) * y.applyfunc(act.at)
    rhs = (sp.Matrix(B) * y).applyfunc(act.at)
    for r in range(B.shape[0]):
        v = expr_is_zero(lhs[r] - rhs[r], list(y))
        if v.status != "proved":
            return v
    return Verdict.proved("A sigma(y) = sigma(B y)")


@claim(id="smbk26.eq-9", source="[SMBK26] Sec. 5.1, eq. (9)",
       statement="rectangular intertwiners A sigma = sigma B give submodels W = B W~ A*, b = B b~",
       expected="checked", method="exact identities on random intertwiners + negative controls")
def check() -> Verdict:
    rng = np.random.default_rng(9)
    n = 0
    for act in ACTS:
        for _ in range(3):
            d = int(rng.integers(2, 5))
            dt = int(rng.integers(1, d + 1))
            B = random_B(rng, act, d, dt)
            sub = from_intertwiners(MLP([2, d, 1], act), [B])
            v = intertwiner_identity(act, sub.A[1], B)
            if v.status != "proved":
                return Verdict.refuted(f"{act}: derived A is no intertwiner partner of B",
                                       counterexample={"B": B, "verdict": v.to_dict()}) \
                    if v.status == "refuted" else v
            vd = sub.check_definition()
            if vd.status != "proved":
                return Verdict.refuted(f"{act}: eq. (9) fails for B = {B.tolist()}",
                                       counterexample=vd.counterexample or {"B": B}) \
                    if vd.status == "refuted" else vd
            n += 1
    controls = {"tanh": sp.Matrix([[1, 0], [2, 0], [0, 1]]),
                "relu": sp.Matrix([[1, 0], [-1, 0], [0, 1]]),
                "power:3": sp.Matrix([[1, 0], [1, 1], [0, 1]])}
    for act, B in controls.items():
        v = intertwiner_identity(act, B, B)
        bad = Submodel(MLP([2, 3, 1], act), [B], A=[B])
        vd = bad.check_definition()
        if v.status != "refuted" or vd.status != "refuted":
            return Verdict.refuted(f"{act}: a non-intertwiner was not refuted",
                                   counterexample={"B": B, "identity": v.status,
                                                   "diagram": vd.status})
    return Verdict.checked(f"{n} random rectangular intertwiners of {', '.join(ACTS)} satisfy "
                           "A sigma = sigma B and eq. (9) for all submodel parameters; 3 "
                           "non-intertwiners refuted", n_samples=n, tol=0.0,
                           witness={"checked": n})
