"""
Your own trained network
========================

A researcher trains an ordinary ``nn.Sequential`` of ``Linear`` and ``Tanh`` layers to be
invariant under reversing its four inputs, with a penalty that pushes ``f(x)`` towards
``f(P x)``. Theorem 4.1 [SMBK26] says that an *identifiable* network that is exactly
equivariant is *layerwise* equivariant: every hidden layer carries a latent action
:math:`\\rho_i(g)` in the intertwiner group :math:`K_i` of its activation (signed permutations
for :math:`\\tanh`, Section 5.1). A trained network is only approximately invariant, so this
example asks the numeric questions first and the exact one last:

1. :func:`identifiable.from_torch` turns the module into the library's MLP (eq. (7)) and its
   parameter;
2. :func:`identifiable.equivariance_error` measures how far ``f`` is from invariance;
3. :func:`identifiable.torch.measure_latent_actions` fits, per hidden layer, the least-squares
   latent map :math:`A_i(g)` and the nearest element :math:`k_i(g)` of :math:`K_i`, with errors on
   held-out probes;
4. :func:`identifiable.weakly_identifiable` checks the theorem's hypothesis on the float
   parameter;
5. the network is projected onto the layerwise structure just measured and rounded to exact
   rationals; :func:`identifiable.latent_actions` then *proves* Theorem 4.1's conclusion for the
   rounded network, with the :math:`\\rho_i` as a witness.
"""

import numpy as np
import sympy as sp
import torch
from torch import nn

import identifiable as idf
from identifiable.torch import measure_latent_actions

torch.manual_seed(0)
P = np.eye(4)[::-1].copy()  # reverse the four inputs: G = {e, P}
Pt = torch.tensor(P, dtype=torch.float32)

# %%
# Train: regression of an invariant target, plus the invariance penalty
# ----------------------------------------------------------------------
net = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 1))
X = torch.randn(2048, 4)
target = (torch.tanh(X[:, :2] - X[:, 2:].flip(1)) ** 2).sum(1, keepdim=True)  # f(Px) = f(x)
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
for _ in range(600):
    opt.zero_grad()
    out, out_mirror = net(X), net(X @ Pt.T)
    loss = ((out - target) ** 2).mean() + 10.0 * ((out - out_mirror) ** 2).mean()
    loss.backward()
    opt.step()
print(f"training loss {loss.item():.4f}")

# %%
# 1. From torch to the theory
# ---------------------------
model, theta = idf.from_torch(net)
print(model, "| float parameter:", theta)
x = torch.randn(5, 4)
print("same function:", np.abs(model.forward(x.double().numpy(), theta)
                               - net(x).detach().double().numpy()).max() < 1e-5)

# %%
# 2. How far from invariant?
# --------------------------
err = idf.equivariance_error(net, [P], n_samples=4096)
print(err)
print("within float32 tolerance:", err.within())

# %%
# The record separates the typical input (median) from the worst (max): the penalty-trained
# network is invariant to within about a percent of its output on typical inputs and a few
# percent at worst -- close, but far above the float32 tolerance the record carries. The exact
# theory cannot be applied to it as it stands; the measurement below can.

# %%
# 3. The latent actions, measured
# -------------------------------
# One record per hidden layer (the outputs of the two ``Tanh`` modules) and generator: the
# least-squares map A, the nearest signed permutation k, their relative errors on held-out
# probes, the distance of A to K, and the identity's error for comparison.
records = measure_latent_actions(net, [P], torch.randn(20_000, 4))
for r in records:
    print(f"layer {r.layer}: ls_error {r.ls_error:.4f}  k_error {r.k_error:.4f}  "
          f"identity_error {r.identity_error:.4f}  |A - K|/|A| {r.dist_to_K:.4f}  "
          f"homomorphism {r.homomorphism}")
    print(np.array2string(np.asarray(r.k), precision=2, suppress_small=True))

# %%
# Read the rows against each other: the least-squares map fits far better than the identity
# (the layer does transform under the mirror), and ``k_error`` says how much is lost by asking
# for an element of K = signed permutations, as Theorem 4.1 and Remark 4.2 predict for an
# exactly equivariant identifiable network. ``|A - K| / |A|`` is the distance of the fitted map
# to the group; ``homomorphism`` says whether g -> k(g) respects the group law (here
# k(P)^2 = I).
#
# 4. The theorem's hypothesis on the float parameter
# --------------------------------------------------
print(idf.weakly_identifiable(model, theta))

# %%
# 5. The exact route: project, round, prove
# -----------------------------------------
# Average every layer over G with the measured actions (rho_0 = P on the input, rho_i = k_i on
# hidden layer i, the identity on the output), round to two decimals as exact rationals and
# average again in exact arithmetic: the result is exactly layerwise equivariant with the
# measured k_i, and close to the trained network.
ks = [sp.Matrix(np.rint(np.asarray(r.k)).astype(int)) for r in records]
rhos = [sp.Matrix(P.astype(int))] + ks + [sp.eye(1)]


def average(W, b, r_in, r_out):
    """(W + r_out^-1 W r_in) / 2 and (b + r_out^-1 b) / 2: the projection onto eq. (14)."""
    return (W + r_out.inv() * W * r_in) / 2, (b + r_out.inv() * b) / 2


def rational(M):
    return sp.Matrix(M.shape[0], M.shape[1],
                     [sp.Rational(round(float(v) * 100), 100) for v in M])


Ws, bs = [], []
for i, layer in enumerate([net[0], net[2], net[4]]):
    W = sp.Matrix(layer.weight.detach().double().numpy())
    b = sp.Matrix(layer.bias.detach().double().numpy())
    W, b = average(W, b, rhos[i], rhos[i + 1])
    W, b = average(rational(W), rational(b), rhos[i], rhos[i + 1])
    Ws.append(W)
    bs.append(b)
theta_exact = model.params(Ws, bs)
print("rounded network vs trained, max |difference| on probes:",
      f"{np.abs(model.forward(X.double().numpy(), theta_exact) - net(X).detach().double().numpy()).max():.3f}")  # noqa: E501
# %%
# The rounded network is exactly invariant, so the exact route applies: Theorem 4.1's proof
# (eq. (12), alignment, eq. (15)) recovers the latent actions from the parameter alone, and they
# coincide with the signed permutations measured on the trained network.
v = idf.latent_actions(model, theta_exact, [sp.Matrix(P.astype(int))])
print(v.status, "-", v.reason)
for i, rho in enumerate(v.witness["rho_generators"], start=1):
    print(f"rho_{i}(P) =", rho[0].tolist(), " measured k_{i}(P) =", ks[i - 1].tolist())
