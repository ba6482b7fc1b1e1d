"""
Recovering hidden latent actions of a mirror-equivariant tanh MLP
=================================================================

Theorem 4.1 [SMBK26] says that an end-to-end equivariant, weakly identifiable network is
layerwise equivariant, and its proof (Appendix A) is constructive. We build a tanh MLP on
3 x 4 x 4 "images" whose layers are equivariant for the left-right mirror, with the mirror
acting on the hidden layers by signed permutations, then hide that structure by scrambling
every hidden layer with a random signed permutation (an element of K_i, which leaves the
function unchanged). :func:`identifiable.latent_actions` recovers a signed-permutation
representation on every layer from the parameters alone.
"""

import matplotlib.pyplot as plt
import numpy as np

import identifiable as idf
from identifiable import groups

mirror = groups.mirror(3, 4, 4)
g = mirror.generators[0].astype(float)
d0, d1, d2 = 48, 32, 24


def involution(d, rng, negate=0.5):
    """A random signed permutation of order 2: d // 4 swapped pairs (sign +-1), the rest
    fixed."""
    M = np.eye(d)
    idx = rng.permutation(d)
    for a, b in zip(idx[0 : d // 2 : 2], idx[1 : d // 2 : 2]):
        s = -1.0 if rng.random() < negate else 1.0
        M[a, a] = M[b, b] = 0.0
        M[a, b] = M[b, a] = s
    return M


rng = np.random.default_rng(0)
r1, r2 = involution(d1, rng), involution(d2, rng)
model = idf.MLP([d0, d1, d2, 10], "tanh")
theta = idf.random_equivariant_params(model, [[g], [r1], [r2], [np.eye(10)]], seed=1)
k = model.random_k(seed=2)                 # random signed permutations in K_1, K_2
scrambled = model.transform(theta, k)
print(idf.is_equivariant(model, scrambled, [g]).status, "- the scrambled net is invariant")

# %%
# Theorem 4.1 as an algorithm
# ---------------------------
v = idf.latent_actions(model, scrambled, [g])
print(v.status, "-", v.reason)
for i, rho in enumerate(v.witness["rho_generators"], start=1):
    K = model.latent_group(i)
    R = rho[0]
    print(f"layer {i}: rho_{i}(mirror) in {K.name}: {K.contains(R)}; "
          f"{int(np.sum(np.diag(R) != 0))} fixed neurons, "
          f"{int(np.sum(R < 0))} negated entries, order 2: {np.allclose(R @ R, np.eye(K.d))}")

# %%
# The recovered action is the planted one, conjugated by the scramble k
# ---------------------------------------------------------------------
planted = [r1, r2]
for i, (R, A) in enumerate(zip(v.witness["rho_generators"], k), start=1):
    expected = A @ planted[i - 1] @ np.linalg.inv(A)
    print(f"layer {i}: max |rho - k rho_planted k^-1| = {np.abs(R[0] - expected).max():.1e}")

fig, axes = plt.subplots(1, 2, figsize=(7, 3.4))
for ax, R, i in zip(axes, v.witness["rho_generators"], (1, 2)):
    ax.imshow(R[0], cmap="coolwarm", vmin=-1, vmax=1)
    ax.set_title(f"rho_{i}(mirror): a signed permutation")
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
