"""Remark 4.2 [SMBK26]: the latent actions of Theorem 4.1 factor through the symmetry groups:
rho_i = (action of K_i on V_i) o (a homomorphism G -> K_i).

How the claim is checked: on planted, scrambled layerwise-equivariant exact MLPs (tanh,
power:3, ReLU), the witness of :func:`identifiable.latent_actions` gives k_i(g)
for every element g of G. We verify here, exactly and independently of the library's own
checks: every k_i(g) is an element of K_i (the derived intertwiner group: signed permutations
for tanh, monomial matrices for powers, positively scaled permutations for ReLU), g -> k_i(g)
is a homomorphism (all pairs g, h: k_i(gh) = k_i(g) k_i(h), with gh computed from the input
representation), and the action on V_i is the partner B of eq. (8) (sigma(k z) = B sigma(z)).

Status: ``checked``: exact on each of finitely many networks.
"""

import itertools

import sympy as sp

from identifiable.claims import claim
from identifiable.equivariance import planted_equivariant_mlp
from identifiable.groups import Rep
from identifiable.intertwining import check_intertwiner
from identifiable.theory.latent_actions import latent_actions
from identifiable.verdict import Verdict

CASES = [
    ("tanh", [[1, 0, 2], [1, 2, 0]], [["twisted", "perm"]], False),
    ("tanh", [[1, 0]], [["twisted", "perm"], ["twisted"]], False),
    ("power:3", [[1, 2, 0]], [["perm", "twisted"]], True),
    ("relu", [[1, 0, 2], [1, 2, 0]], [["perm"], ["perm", "trivial"]], False),
]


@claim(id="smbk26.rem-4.2", source="[SMBK26] Remark 4.2",
       statement="the latent actions of Theorem 4.1 are homomorphisms G -> K_i composed with "
                 "the action of K_i",
       expected="checked", method="exact membership + all-pairs homomorphism")
def check() -> Verdict:
    n_elements = 0
    for seed, (act, perms, hidden, inv) in enumerate(CASES):
        case = planted_equivariant_mlp(act, perms, hidden, invariant=inv, seed=seed + 10)
        v = latent_actions(case.model, case.theta, case.rep_in, case.rep_out)
        if v.status != "proved":
            return Verdict.refuted(f"{act}: latent_actions {v.status}",
                                   counterexample={"case": seed, "reason": v.reason})
        w = v.witness
        model = w["model"]
        G = Rep(case.rep_in)
        words = G.words
        index = {word: j for j, word in enumerate(words)}
        table = G.multiplication_table()
        for i, ki in enumerate(w["k"], start=1):
            K = model.latent_group(i)
            act_i = model.activations[i - 1]
            for word, M in ki.items():
                if not K.contains(sp.Matrix(M)):
                    return Verdict.refuted(f"k_{i}({word}) is not in K_{i} = {K.name}",
                                           counterexample={"layer": i, "g": word, "k": M})
                B = w["rho"][i - 1][word]
                if check_intertwiner(act_i, sp.Matrix(M), sp.Matrix(B)).status != "proved":
                    return Verdict.refuted(f"rho_{i}({word}) is not the partner of k_{i}",
                                           counterexample={"layer": i, "g": word})
                n_elements += 1
            for g, h in itertools.product(words, repeat=2):
                gh = words[table[index[g], index[h]]]
                if sp.Matrix(ki[gh]) != sp.Matrix(ki[g]) * sp.Matrix(ki[h]):
                    return Verdict.refuted(f"k_{i} is not a homomorphism at ({g}, {h})",
                                           counterexample={"layer": i, "g": g, "h": h})
    return Verdict.checked(f"{n_elements} latent symmetries k_i(g) are in K_i, act through "
                           "their eq. (8) partner, and form homomorphisms on every pair",
                           n_samples=n_elements, tol=0.0)
