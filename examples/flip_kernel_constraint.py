"""
The flip kernel constraint of GCNN layers
=========================================

A convolution layer is equivariant to horizontal flips tau, acting on its input by
``x -> tau(P0 x)`` and on its output by ``y -> tau(P1 y)`` with channel permutations P0, P1 of
order at most 2, exactly when its kernel psi satisfies eq. (3) of [BK23]:
``tau(psi) = P1 psi P0^T``: flipping every filter is the same as permuting the channels.

Here we take a lifting layer (3 RGB input channels left alone, 8 output channels in 4 mirrored
pairs), check a random kernel against (3), project it onto the constraint, and check the
convolution layer itself, exactly on all basis images for an integer kernel and numerically on
random images for a float one.
"""

import matplotlib.pyplot as plt
import numpy as np

from identifiable import kernels

# %%
# Channel permutations and a random kernel
# ----------------------------------------
# ``gcnn_permutation(n_invariant, n_regular)`` keeps ``n_invariant`` channels and swaps
# ``n_regular`` pairs: the two kinds of channels of a horizontal-flip GCNN (Section 2.2).
P0 = kernels.gcnn_permutation(3, 0)  # RGB input: invariant channels
P1 = kernels.gcnn_permutation(0, 4)  # 4 regular pairs: a lifting convolution
rng = np.random.default_rng(0)
psi = rng.integers(-3, 4, size=(8, 3, 3, 3))
v = kernels.check_flip_kernel(psi, P0, P1)
print(v.status, "-", v.reason)
print("offending channel pair:", v.counterexample["out"], v.counterexample["in"])

# %%
# Projecting onto the constraint
# ------------------------------
# ``(psi + P1^T tau(psi) P0) / 2`` is the orthogonal projection onto the kernels satisfying (3);
# for an integer kernel it stays exact (halves).
proj = kernels.project_flip_kernel(psi, P0, P1)
print(kernels.check_flip_kernel(proj, P0, P1))
again = kernels.project_flip_kernel(proj, P0, P1)
print("idempotent:", bool(np.all(again == proj)))

# %%
# The convolution layer itself
# ----------------------------
# For an exact kernel, equivariance is decided on every basis image (the layer is linear), so
# ``proved`` holds for all images of that size; the raw kernel fails with a basis image as
# counterexample. A float kernel is checked on random images.
print(kernels.check_conv_equivariance(proj, P0, P1, image_size=(8, 8), padding=1))
bad = kernels.check_conv_equivariance(psi, P0, P1, image_size=(8, 8), padding=1)
print(bad.status, "- basis image (channel, row, column):", bad.counterexample["basis"])
psi_f = kernels.random_flip_kernel(P0, P1, 5, seed=1)
print(kernels.check_conv_equivariance(psi_f, P0, P1, image_size=(16, 16), padding=2))
noisy = psi_f + 0.05 * rng.standard_normal(psi_f.shape)
print(kernels.check_conv_equivariance(noisy, P0, P1, image_size=(16, 16), padding=2).status,
      "after adding noise")

# %%
# What the constraint looks like
# ------------------------------
# Each column shows a filter of the projected float kernel next to its partner in the mirrored
# pair: the partner is the horizontally flipped filter (RGB channels as colours).


def to_rgb(f):
    f = np.transpose(f, (1, 2, 0))
    return (f - f.min()) / (np.ptp(f) + 1e-12)


fig, axes = plt.subplots(2, 4, figsize=(7, 3.6))
for pair in range(4):
    a, b = 2 * pair, 2 * pair + 1
    axes[0, pair].imshow(to_rgb(psi_f[a]))
    axes[1, pair].imshow(to_rgb(psi_f[b]))
    axes[0, pair].set_title(f"channel {a}", fontsize=9)
    axes[1, pair].set_title(f"channel {b} = flip", fontsize=9)
    print(f"channel {b} is channel {a} flipped:", np.allclose(psi_f[b], psi_f[a][..., ::-1]))
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("a lifting layer satisfying eq. (3): mirrored filter pairs")
fig.tight_layout()
