"""
Attention heads permute under a token symmetry
==============================================

Section 5.2 of [SMBK26]: the latent space of a multi-head attention layer is
``V_1 = R^{n x d_1 x h_1}`` and its symmetry group is ``K_1 = GL(d_1)^{h_1} x| S_{h_1}``:
heads can be permuted, and each head's output can be transformed linearly. Theorem 4.1 says
that an (identifiable) network that is equivariant end to end is equivariant layer by layer,
with ``G`` acting on ``V_1`` through ``K_1``. For attention this means: **a symmetry of the task
acts on the hidden layer by permuting heads** (and transforming each head's values), as in
Figure 3 of the paper, where two heads of a trained vision attention layer swap when the image
is mirrored.

Here the symmetry is the reversal of the token order (a "mirror" of a row of ``n = 8``
patches). Without positional encodings attention is equivariant under *every* token
permutation (Remark 4.3); learnable positional encodings break that, and a network that is
equivariant under the reversal alone must encode it somewhere -- here, in a permutation of its
heads. :func:`~identifiable.theory.attention.equivariant_attention` builds such a network
(two orbits of two heads, positional encodings in the first layer) and hides the structure by a
random element of ``K_1`` (a random head order and random per-head matrices).
:func:`~identifiable.latent_actions` then runs the constructive proof of
Theorem 4.1 (Appendix A) and recovers how the mirror acts on the heads.
"""

import matplotlib.pyplot as plt
import numpy as np

import identifiable as idf
from identifiable import groups
from identifiable.attention import (
    equivariant_attention,
    is_equivariant_attention,
    positional_invariance,
    token_permutations,
)

n, d0 = 8, 2
reversal = groups.Rep.from_permutations([list(range(n))[::-1]], name="reversal")
mirror = token_permutations(reversal, d0)  # acts on sequences R^(n x d0), flattened
planted = equivariant_attention(n, mirror, d_hidden=2, orbits=2, seed=4)
model, theta = planted.model, planted.theta
print(model)
print(is_equivariant_attention(model, theta, mirror).status, "- f(mirror x) = mirror f(x)")
print(positional_invariance(model, theta, reversal).status,
      "- the positional encodings alone are not mirror-invariant")

# %%
# Theorem 4.1, constructively
# ---------------------------
# For the generator ``g`` (the mirror), ``theta' = g^{-1} . theta`` reverses the rows of the
# positional encodings (eq. (12) with the action of Remark 4.3); aligning ``theta'`` with
# ``theta`` gives ``k_1(g)``: a head permutation and one 2 x 2 matrix per head. The latent action
# is ``rho_1(g) = (token reversal) o k_1(g)``; it is checked to be a homomorphism (eq. (15)) and
# to make every layer equivariant (eq. (14)).
v = idf.latent_actions(model, theta, mirror)
print(v.status, "-", v.reason)
rho = v.witness["rho"][0]["s0"]
print("mirror moves head s to head perm[s]: perm =", list(rho.perm))
for s, A in enumerate(rho.per_head):
    print(f"  head {s} -> head {rho.perm[s]}, per-head matrix", np.round(A, 3).tolist())
print("planted permutation:", list(planted.rho["s0"].perm),
      " max |found - planted| =", f"{rho.distance(planted.rho['s0']):.1e}")

# %%
# Attention maps before and after mirroring
# ------------------------------------------
# Row 1: the attention matrices ``smax(Xbar W_A^j Xbar^T)`` of the four heads on an input
# ``x``. Row 2: the same heads on the mirrored input. Row 3: row 2 with the heads put back in
# the order of row 1 (head ``j`` of row 1 is head ``perm[j]`` of row 2) and each map mirrored
# back (reversed rows and columns): it equals row 1. The heads trade places.
rng = np.random.default_rng(0)
x = rng.standard_normal((n, d0))
gx = x[::-1]
maps = model.attention_maps(x, theta)[0]
gmaps = model.attention_maps(gx, theta)[0]
back = np.stack([gmaps[rho.perm[j]][::-1, ::-1] for j in range(maps.shape[0])])
print("max |row 3 - row 1| =", f"{np.max(np.abs(back - maps)):.1e}")

h = maps.shape[0]
fig, axes = plt.subplots(3, h, figsize=(2.2 * h, 6.8))
rows = [(maps, "x"), (gmaps, "mirror x"), (back, "row 2, heads\nre-ordered, unmirrored")]
for r, (M, label) in enumerate(rows):
    for j in range(h):
        ax = axes[r, j]
        ax.imshow(M[j], vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks([])
        ax.set_yticks([])
        if r == 0:
            ax.set_title(f"head {j}")
        if r == 1:
            ax.set_title(f"head {j} (was {int(np.flatnonzero(np.array(rho.perm) == j)[0])})",
                         fontsize=9)
        if j == 0:
            ax.set_ylabel(label)
fig.suptitle("Attention maps: the token mirror permutes the heads (Section 5.2, Figure 3)")
fig.tight_layout()
plt.show()
