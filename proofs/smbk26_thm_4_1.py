"""Theorem 4.1 [SMBK26]: a weakly identifiable parameter at which the model is G-equivariant is
layerwise equivariant for some actions of G on the latent spaces.

How the claim is checked: the theorem's constructive proof (Appendix A) is
:func:`identifiable.latent_actions`. We plant layerwise-equivariant exact MLPs
(tanh, power:3 and linear activations; permutation groups S_3, C_3, S_2 on the input; signed
permutation representations on the hidden layers), scramble every hidden layer by a random
element of K_i (so the planted actions are hidden), and require that ``latent_actions``

* returns ``proved``: every layer equivariant exactly for the actions it found, each rho_i a
  homomorphism (eq. (15));
* and that its witness re-checks here independently (layer equivariance at random exact
  rational inputs for every generator).

For attention (Section 5.2) the same algorithm runs numerically on a planted multi-head
network (:func:`identifiable.theory.attention.equivariant_attention`) and must recover the planted
head permutation.

Status: ``checked``: each network is decided exactly, but the theorem quantifies over all
networks and the library verifies finitely many (the attention case numerically).
"""

import numpy as np
import sympy as sp

from identifiable.attention import equivariant_attention
from identifiable.claims import claim
from identifiable.equivariance import planted_equivariant_mlp
from identifiable.groups import Rep
from identifiable.theory.latent_actions import latent_actions
from identifiable.verdict import Verdict

CASES = [
    ("tanh", [[1, 0, 2], [1, 2, 0]], [["twisted", "perm"]], False),
    ("tanh", [[1, 2, 0]], [["perm", "trivial"], ["perm"]], True),
    ("tanh", [[1, 0]], [["twisted", "perm"], ["twisted"]], False),
    ("power:3", [[1, 0, 2], [1, 2, 0]], [["perm"]], False),
    ("power:3", [[1, 0]], [["twisted", "trivial"]], True),
    ("identity", [[1, 0]], [["perm"]], False),
    ("identity", [[1, 2, 0]], [["perm"]], True),
]


def _layer_rechecks(model, theta, rep_in, rep_out, rho_gens, rng) -> bool:
    prev = rep_in
    for i in range(1, model.depth + 1):
        nxt = rep_out if i == model.depth else rho_gens[i - 1]
        layer = model.layers[i - 1]
        for P, N in zip(prev, nxt):
            x = sp.Matrix([sp.Rational(int(rng.integers(-9, 10)), 4) for _ in range(layer.in_dim)])
            lhs = layer.symbolic(sp.Matrix(P) * x, theta[i - 1])
            rhs = sp.Matrix(N) * layer.symbolic(x, theta[i - 1])
            if any(abs(float(sp.N(a - b, 30))) > 1e-20 for a, b in zip(lhs, rhs)):
                return False
        prev = nxt
    return True


@claim(id="smbk26.thm-4.1", source="[SMBK26] Theorem 4.1, App. A",
       statement="weakly identifiable + end-to-end G-equivariant => layerwise equivariant "
                 "(tanh, power, linear MLPs; attention)",
       expected="checked", method="latent_actions on planted scrambled networks")
def check() -> Verdict:
    rng = np.random.default_rng(41)
    done = []
    for seed, (act, perms, hidden, inv) in enumerate(CASES):
        case = planted_equivariant_mlp(act, perms, hidden, invariant=inv, seed=seed)
        v = latent_actions(case.model, case.theta, case.rep_in, case.rep_out)
        if v.status != "proved":
            return Verdict.refuted(f"{act} network {case.model.widths}: latent_actions "
                                   f"{v.status}: {v.reason}",
                                   counterexample={"activation": act, "perms": perms,
                                                   "hidden": hidden, "seed": seed})
        w = v.witness
        if not _layer_rechecks(w["model"], w["theta"], case.rep_in, case.rep_out,
                               w["rho_generators"], rng):
            return Verdict.refuted("witness does not re-check", counterexample={"seed": seed})
        done.append(f"{act} {case.model.widths} |G|={case.group_order}")
    planted = equivariant_attention(6, Rep([[[-1, 0], [0, 1]]]), d_hidden=2, orbits=1, seed=3)
    v = latent_actions(planted.model, planted.theta, planted.rep_in, planted.rep_out)
    if v.status != "checked":
        return Verdict.refuted(f"attention: latent_actions {v.status}: {v.reason}",
                               counterexample={"seed": 3})
    done.append("attention (numeric)")
    return Verdict.checked(f"latent actions found and verified on {len(done)} planted networks",
                           n_samples=len(done), tol=v.tol or 0.0, witness=done)
