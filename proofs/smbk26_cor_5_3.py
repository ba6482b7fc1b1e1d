"""Corollary 5.3 [SMBK26] (of Conjecture 5.1, established for tanh): for every parameter theta
of an MLP with an equivariant end-to-end function there is a theta' with the same function at
which every layer is equivariant.

How the claim is checked: we take planted equivariant tanh networks and ReLU Example 2.1 of
[BK23], and break layerwise equivariance without changing the function: extra *half-dead*
neurons (Remark 5.2: a non-symmetric incoming row, a zero outgoing column) in a hidden layer.
Such a theta is not weakly identifiable and its first layer is not equivariant for the
planted actions. :func:`identifiable.latent_actions` must still prove
layerwise equivariance at the Remark 5.2 rewrite theta' (``witness["rewritten"]``), and we
re-check here that theta' has the same function as theta (exactly:
:func:`identifiable.theory.same_function.same_function`) and differs from theta.

Status: ``checked``: exact on each of finitely many networks.
"""

import numpy as np
import sympy as sp

from identifiable.claims import claim
from identifiable.equivariance import planted_equivariant_mlp
from identifiable.identifiability import same_function
from identifiable.models import MLP
from identifiable.theory.latent_actions import latent_actions
from identifiable.verdict import Verdict

J = sp.Matrix([[0, 1], [1, 0]])


def _with_half_dead(case, rng, extra: int):
    """Append ``extra`` half-dead neurons to hidden layer 1."""
    m, th = case.model, case.theta
    Ws = [sp.Matrix(W) for W in th.weights]
    bs = [sp.Matrix(b) for b in th.biases]
    for _ in range(extra):
        row = sp.Matrix([[sp.Rational(int(rng.integers(1, 7)), int(rng.integers(1, 3))) * (j + 1)
                          for j in range(Ws[0].cols)]])
        Ws[0] = Ws[0].col_join(row)
        bs[0] = bs[0].col_join(sp.Matrix([[sp.Rational(1, 3)]]))
        Ws[1] = Ws[1].row_join(sp.zeros(Ws[1].rows, 1))
    widths = list(m.widths)
    widths[1] += extra
    big = MLP(widths, m.activations[0].name)
    return big, big.params(Ws, bs)


@claim(id="smbk26.cor-5.3", source="[SMBK26] Corollary 5.3, Remark 5.2",
       statement="an equivariant MLP function has a parameter theta' (same function) at which "
                 "every layer is equivariant",
       expected="checked", method="latent_actions after Remark 5.2 zeroing, exact")
def check() -> Verdict:
    rng = np.random.default_rng(53)
    done = []
    for seed, (perms, hidden, inv) in enumerate([
            ([[1, 0]], [["twisted", "perm"]], False),
            ([[1, 2, 0]], [["perm"]], True),
            ([[1, 0, 2], [1, 2, 0]], [["twisted"], ["perm"]], False)]):
        case = planted_equivariant_mlp("tanh", perms, hidden, invariant=inv, seed=seed + 20)
        model, theta = _with_half_dead(case, rng, extra=1 + seed % 2)
        nets = [(model, theta, case.rep_in, case.rep_out, f"tanh {model.widths}")]
        done.extend(_run(nets))
        if isinstance(done[-1], Verdict):
            return done[-1]
    relu = MLP([2, 2, 1], "relu", bias=False)  # Example 2.1 [BK23]
    out = _run([(relu, relu.params([[[1, 0], [0, 0]], [[0, 0]]]), [J], None, "Example 2.1")])
    if isinstance(out[-1], Verdict):
        return out[-1]
    done.extend(out)
    return Verdict.checked(f"{len(done)} equivariant networks with half-dead neurons rewritten "
                           "to layerwise-equivariant parameters with the same function",
                           n_samples=len(done), tol=0.0, witness=done)


def _run(nets):
    out = []
    for model, theta, rep_in, rep_out, label in nets:
        v = latent_actions(model, theta, rep_in, rep_out)
        if v.status != "proved" or not v.witness["rewritten"]:
            return [Verdict.refuted(f"{label}: latent_actions {v.status}, rewritten="
                                    f"{v.witness and v.witness.get('rewritten')}",
                                    counterexample={"network": label, "reason": v.reason})]
        theta2 = v.witness["ambient_theta"]
        s = same_function(model, theta, theta2)
        if s.status not in ("proved", "checked"):
            return [Verdict.refuted(f"{label}: the rewrite changes the function",
                                    counterexample={"network": label, **(s.counterexample or {})})]
        out.append(f"{label}: same function {s.status}")
    return out
