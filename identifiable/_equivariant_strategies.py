"""Hypothesis strategies for layerwise-equivariant networks (re-exported by
:mod:`identifiable.strategies`)."""

from __future__ import annotations

from hypothesis import strategies as st

from identifiable.theory.equivariance import EquivariantCase, planted_equivariant_mlp

__all__ = ["EquivariantCase", "layerwise_equivariant_networks"]


@st.composite
def layerwise_equivariant_networks(draw, activations: tuple[str, ...] = ("tanh", "relu",
                                                                          "power:3"),
                                   max_points: int = 3, max_depth: int = 3,
                                   invariant_output: bool | None = None) -> EquivariantCase:
    """Random exact MLPs that are layerwise equivariant and then scrambled
    (see :func:`identifiable.equivariance.planted_equivariant_mlp`): a random permutation group
    on ``n <= max_points`` points, random representations into K_i (signed permutation
    representations twisted by sign characters and trivial summands; no twist for ReLU),
    equivariant weights from the kernel constraint, every hidden layer scrambled by a random
    k_i in K_i."""
    n = draw(st.integers(2, max_points))
    perms = [list(draw(st.permutations(range(n)))) for _ in range(draw(st.integers(1, 2)))]
    act = draw(st.sampled_from(list(activations)))
    depth = draw(st.integers(2, max_depth))
    hidden = []
    for _ in range(depth - 1):
        blocks = [("twisted" if act != "relu" and draw(st.booleans()) else "perm")
                  for _ in range(draw(st.integers(1, 2)))]
        if draw(st.booleans()):
            blocks.append("trivial")
        hidden.append(blocks)
    inv = draw(st.booleans()) if invariant_output is None else invariant_output
    return planted_equivariant_mlp(act, perms, hidden, invariant=inv,
                                   seed=draw(st.integers(0, 2**16)))
