"""
Latent actions of a residual network
====================================

Residual networks are an extension beyond [SMBK26] (its Section 7 names skip connections as
open). For ``h_0 = E x + e``, ``h_b = h_{b-1} + U_b tanh(V_b h_{b-1} + c_b)``,
``y = O h_B + o`` the latent group, derived in :mod:`identifiable.models.residual`, is
``Aff(d_stream) x K_1 x ... x K_B``: one affine change of coordinates ``h -> S h + t`` of the
stream, shared by every block (the skip has no parameter to absorb a different one), times a
signed permutation of every block's hidden neurons.

We plant such a change of coordinates and block permutations and recover them with the exact
aligner, then plant an equivariant residual network, hide its structure, and let the
algorithm of Theorem 4.1's proof find the latent actions.
"""

import matplotlib.pyplot as plt
import numpy as np
import sympy as sp

import identifiable as idf
from identifiable.models.residual import affine
from identifiable.theory.residual import functional_dimension_residual, planted_equivariant_residual

model = idf.ResidualMLP(d_in=3, d_stream=3, blocks=[4, 3], d_out=3, activation="tanh")
theta = model.random_params(0, exact=True)
print([K.name for K in model.latent_groups()])

# %%
# A planted stream change of basis and block permutations, recovered exactly
# ---------------------------------------------------------------------------
S = sp.Matrix([[1, 2, 0], [0, 1, -1], [1, 0, 1]])
t = [sp.Rational(1, 2), -1, 3]
P1 = sp.Matrix([[0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])
P2 = sp.Matrix([[0, 0, 1], [0, -1, 0], [1, 0, 0]])
k = [affine(S, t), P1, P2]
theta2 = model.transform(theta, k)
v = idf.align(model, theta, theta2)
print(v.status, "-", v.reason)
print("recovered k equals the planted k:",
      all(sp.Matrix(a) == sp.Matrix(b) for a, b in zip(v.witness, k)))

# a parameter with a different function is refuted, naming where it differs
other = model.random_params(1, exact=True)
print(idf.align(model, theta, other).status)

# %%
# No larger group acts: the functional dimension is #params - dim K
# -----------------------------------------------------------------
fd = functional_dimension_residual(model, model.random_params(2))
print(f"rank {fd.rank} = #params {fd.n_params} - dim K {model.symmetry_dimension}")

# %%
# A planted equivariant residual network
# --------------------------------------
# The cyclic group C_3 permutes the three inputs and outputs; the stream carries the
# permutation representation and the blocks signed permutation representations. A random
# element of K (with a stream translation) hides all of it.
case = planted_equivariant_residual("tanh", [[1, 2, 0]], ["perm"],
                                    [["perm", "trivial"], ["twisted"]], seed=0)
v = idf.latent_actions(case.model, case.theta, case.rep_in, case.rep_out)
print(v.status, "-", v.reason)
rho_s, rho_1, rho_2 = (r[0] for r in v.witness["rho_generators"])
print("rho_s(g), an affine map of the stream (augmented):")
sp.pprint(rho_s)
Sh = sp.Matrix(case.k[0])
print("it is the planted permutation conjugated by the hidden S^:",
      sp.Matrix(rho_s) == Sh * sp.Matrix(case.planted["stream"][0]) * Sh.inv())

fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
for ax, R, name in zip(axes, (rho_s, rho_1, rho_2), ("stream (affine)", "block 1", "block 2")):
    A = np.array(sp.Matrix(R).evalf().tolist(), dtype=float)
    ax.imshow(A, cmap="coolwarm", vmin=-np.abs(A).max(), vmax=np.abs(A).max())
    ax.set_title(f"rho({name})")
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
