"""Residual MLPs: an extension beyond [SMBK26] (whose Section 7 names skip connections as open).

The model
---------
``ResidualMLP(d_in, d_stream, blocks, d_out)`` computes

    h_0 = E x + e,                                            (embedding)
    h_b = h_{b-1} + U_b sigma(V_b h_{b-1} + c_b),  b = 1..B,  (blocks, hidden widths m_b)
    y   = O h_B + o.                                          (readout)

As a model of Definition 3.1 [SMBK26] its layers are the embedding, the B blocks and the readout
(depth ``B + 2``); :meth:`ResidualMLP.latents` returns the points ``[x, h_0, ..., h_B, y]`` of
the *stream* ``V_s = R^{d_stream}``, :meth:`ResidualMLP.block_latents` the block hidden layers
``a_b = sigma(V_b h_{b-1} + c_b)`` in ``R^{m_b}``. Parameters: :class:`ResidualTheta`.

The latent group, derived
-------------------------
Which maps of the latent spaces can be undone by a change of parameters (Definition 3.4)?

*Block hidden layers.* Exactly as for the MLP (eq. (8)): ``A_b`` in the intertwiner group ``K_b``
of sigma on ``R^{m_b}`` with partner ``B_b`` (``sigma(A_b z) = B_b sigma(z)``) acts by
``V_b -> A_b V_b``, ``c_b -> A_b c_b``, ``U_b -> U_b B_b^{-1}``.

*The stream.* Suppose every stream point is moved by the same map ``phi``, ``h_b' = phi(h_b)``.
The block ``h + U a`` has no parameter on its skip, so ``phi(h + U a) = phi(h) + U' B a`` for
all ``h`` and all ``a`` in the (open, for a non-constant sigma) range of the block: hence
``phi(h + w) - phi(h)`` depends on ``w`` only, so ``phi`` is affine, ``phi(h) = S h + t``, with
``S`` invertible (the readout must be recovered, ``O' = O S^{-1}``) and ``U' = S U B^{-1}``. The
skip being the identity puts no condition on ``S`` (``S Id S^{-1} = Id`` for every ``S``), so
every ``S`` in ``GL(d_stream)`` is allowed; but the same skip forces *one* ``phi`` for all the
stream points ``h_0, ..., h_B`` (a different ``S_b`` per block would need ``S_b S_{b-1}^{-1} =
Id`` on the skip). The translation ``t`` is absorbed by the biases:

    E' = S E,  e' = S e + t,
    V_b' = A_b V_b S^{-1},  c_b' = A_b (c_b - V_b S^{-1} t),  U_b' = S U_b B_b^{-1},
    O' = O S^{-1},  o' = o - O S^{-1} t.

In the augmented coordinates ``(h, 1)`` with ``S^ = [[S, t], [0, 1]]`` this is linear:
``[E'; e'] = S^ [E e; 0 1]`` (top rows), ``[V_b' | c_b'] = A_b [V_b | c_b] S^^{-1}``,
``[O' | o'] = [O | o] S^^{-1}``. So the stream group ``K_s`` is the affine group
``Aff(d_stream) = GL(d_stream) x| R^{d_stream}`` (:class:`StreamAffine`, elements given as
augmented ``(d+1) x (d+1)`` matrices) for a network with biases, and ``GL(d_stream)`` without
(no bias can absorb ``t``). Altogether

    K = K_s x K_1 x ... x K_B,    dim K = d_s^2 (+ d_s with biases) + sum_b dim K_b,

and ``k = (S^, A_1, ..., A_B)`` acts by :meth:`ResidualMLP.transform`. Note that ``K`` is *not*
a product of one group per latent space of the layered model: the stream element is shared by
``h_0, ..., h_B``.

*No larger group acts, generically.* Where the parameter-to-function map has rank
``#params - dim K`` (the functional dimension, :func:`identifiable.theory.residual.
functional_dimension_residual`), the fibres are, near ``theta``, the ``K``-orbits. This is
verified numerically in ``tests/test_residual.py`` for tanh networks with
``d_stream <= min(d_in, d_out)``. For ``d_stream > d_out`` (or ``> d_in``) the rank is
smaller: the part of ``U_B`` in the kernel of ``O`` (or the part of ``V_1`` killing the range
of ``E``) is invisible, a continuous degeneracy that no group action explains; such
parameters are never identifiable. Activations with *affine* intertwiners (the sigmoid,
``sigma(-z) = 1 - sigma(z)``) have further discrete symmetries (a flipped neuron translates the
later stream points, absorbed by later biases), outside ``K`` as for the MLP.

:meth:`ResidualMLP.check_symmetry` verifies eq. (3) sublayer by sublayer (embedding, block
hidden map, block update, readout), exactly for exact input.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from identifiable import zero as _zero
from identifiable.activations import Activation
from identifiable.latent_groups import GeneralLinear, LatentGroup, TrivialGroup
from identifiable.models.base import Layer, Model, input_symbols
from identifiable.models.mlp import MLP, AffineLayer
from identifiable.models.params import (
    as_param_matrix,
    as_param_vector,
    float_array,
    param_kind,
    zero_vector,
)
from identifiable.numbers import (
    as_matrix,
    default_tol,
    sample_tol,
    to_numpy,
    validate_tol,
    validates_arguments,
)
from identifiable.verdict import UndecidedError, Verdict

__all__ = ["ResidualMLP", "ResidualTheta", "ResidualBlock", "StreamAffine", "affine",
           "split_affine"]


# ---------------------------------------------------------------------------------- Aff(d)
def affine(S: Any, t: Any = None) -> Any:
    """The augmented matrix ``[[S, t], [0, 1]]`` of ``h -> S h + t`` (exact for sympy input)."""
    if isinstance(S, sp.MatrixBase):
        d = S.shape[0]
        tt = sp.zeros(d, 1) if t is None else sp.Matrix(t).reshape(d, 1)
        return sp.ImmutableMatrix(sp.Matrix(S).row_join(tt).col_join(
            sp.zeros(1, d).row_join(sp.ones(1, 1))))
    S = np.asarray(S, dtype=float)
    d = S.shape[0]
    out = np.eye(d + 1)
    out[:d, :d] = S
    if t is not None:
        out[:d, d] = np.asarray(t, dtype=float).reshape(-1)
    return out


def split_affine(M: Any) -> tuple[Any, Any]:
    """``(S, t)`` of an augmented matrix ``[[S, t], [0, 1]]``."""
    d = M.shape[0] - 1
    if isinstance(M, sp.MatrixBase):
        return sp.ImmutableMatrix(M[:d, :d]), sp.ImmutableMatrix(M[:d, d])
    M = np.asarray(M)
    return M[:d, :d], M[:d, d]


class StreamAffine(LatentGroup):
    """``Aff(d) = GL(d) x| R^d`` acting on the residual stream ``R^d`` by ``h -> S h + t``;
    elements are augmented ``(d+1) x (d+1)`` matrices ``[[S, t], [0, 1]]`` (:func:`affine`).

    The stream group of a :class:`ResidualMLP` with biases (extension beyond [SMBK26]; see the
    module docstring for the derivation). The partner of an element is itself (the stream has
    no activation)."""

    family = "affine"

    def __init__(self, d: int):
        if int(d) < 1:
            raise ValueError(f"d must be >= 1, got {d}")
        self.d = int(d)
        self.name = f"Aff({self.d})"
        self._gl = GeneralLinear(self.d)

    @property
    def dimension(self) -> int:
        return self.d * self.d + self.d

    @validates_arguments
    def membership(self, A: Any, tol: float | None = None) -> Verdict:
        tol = validate_tol(tol)
        d = self.d
        M = as_matrix(A, "A", shape=(d + 1, d + 1))
        if isinstance(M, sp.MatrixBase):
            for j in range(d + 1):
                want = 1 if j == d else 0
                z = _zero.is_zero(M[d, j] - want)
                if z is None:
                    return Verdict.undecided(f"A in {self.name}: cannot decide whether "
                                             f"A[{d},{j}] = {want}", method="exact")
                if z is False:
                    return Verdict.refuted(f"A[{d},{j}] = {M[d, j]}, but an augmented affine "
                                           f"matrix has last row (0, ..., 0, 1)",
                                           counterexample={"entry": (d, j), "value": M[d, j]})
        else:
            t = default_tol(M) if tol is None else tol
            last = np.zeros(d + 1)
            last[d] = 1.0
            err = np.abs(M[d] - last)
            if np.max(err) > t:
                j = int(np.argmax(err))
                return Verdict.refuted(f"A[{d},{j}] = {M[d, j]:.6g} is not that of an augmented "
                                       "affine matrix", counterexample={"entry": (d, j)},
                                       method="tolerance", tol=t)
        v = self._gl.membership(M[:d, :d], tol)
        if v.status == "proved":
            return Verdict.proved(f"A = [[S, t], [0, 1]] with S invertible: A in {self.name}")
        return v.but(reason=f"the linear part S: {v.reason}")

    def random(self, seed: int | np.random.Generator | None = None) -> np.ndarray:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return affine(self._gl.random(rng), rng.standard_normal(self.d))

    def random_exact(self, seed: int | np.random.Generator | None = None) -> sp.ImmutableMatrix:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        S = self._gl.random_exact(rng)
        t = [sp.Rational(int(p), int(q)) for p, q in zip(rng.integers(-4, 5, self.d),
                                                         rng.integers(1, 3, self.d))]
        return affine(S, t)

    def partner(self, A: Any) -> Any:
        return A

    def partner_inverse(self, B: Any) -> Any:
        if isinstance(B, sp.MatrixBase):
            return _zero.inverse(B, "S^")
        return np.linalg.inv(np.asarray(B, dtype=float))

    def entrywise_partner(self, M: Any) -> Any:
        return M

    def generators(self, seed: int = 0, *, symbolic_below: int = 4) -> tuple[list, bool]:
        gens, complete = self._gl.generators(seed, symbolic_below=symbolic_below)
        t = [sp.Symbol(f"t_{j + 1}", real=True) for j in range(self.d)]
        return [affine(sp.Matrix(g)) for g in gens] + [affine(sp.eye(self.d), t)], complete


# ---------------------------------------------------------------------------------- parameters
@dataclass(frozen=True, eq=False)
class ResidualTheta:
    """Parameters of a :class:`ResidualMLP`: ``embed = (E, e)``, ``blocks = ((V_1, c_1, U_1),
    ...)``, ``readout = (O, o)``; ``kind`` as for :class:`~identifiable.models.mlp.Theta`
    (``"exact"``, ``"symbolic"`` or ``"float"``). Biases are sympy columns or numpy vectors
    (zero for a bias-free model). Iterating yields the layers' parameters ``(E, e)``,
    ``(V_b, c_b, U_b)``..., ``(O, o)`` (the order of :attr:`ResidualMLP.layers`)."""

    embed: tuple
    blocks: tuple
    readout: tuple
    kind: str

    @property
    def exact(self) -> bool:
        return self.kind != "float"

    def __len__(self) -> int:
        return len(self.blocks) + 2

    def __iter__(self) -> Iterator[tuple]:
        return iter((self.embed, *self.blocks, self.readout))

    def __getitem__(self, i: int) -> tuple:
        return tuple(self)[i]

    def matrices(self) -> list:
        """Every parameter matrix in the order of :meth:`flat`."""
        out = list(self.embed)
        for blk in self.blocks:
            out.extend(blk)
        return out + list(self.readout)

    @property
    def numeric(self) -> ResidualTheta:
        return self if self.kind == "float" else self._numeric

    @functools.cached_property
    def _numeric(self) -> ResidualTheta:
        if self.kind == "symbolic":
            raise ValueError("theta: has free symbols; substitute values first")
        vec = lambda b: float_array(b).reshape(-1)  # noqa: E731
        return ResidualTheta((float_array(self.embed[0]), vec(self.embed[1])),
                             tuple((float_array(V), vec(c), float_array(U))
                                   for V, c, U in self.blocks),
                             (float_array(self.readout[0]), vec(self.readout[1])), "float")

    def flat(self) -> np.ndarray:
        """All entries as one float64 vector: ``E`` (row-major), ``e``, then per block ``V_b``,
        ``c_b``, ``U_b``, then ``O``, ``o`` (biases included even when zero)."""
        parts = [np.asarray(M, dtype=float).ravel() for M in self.numeric.matrices()]
        return np.concatenate(parts) if parts else np.zeros(0)

    @validates_arguments
    def equals(self, other: ResidualTheta, tol: float | None = None) -> bool:
        """Entry-wise equality: exact for two exact parameters (``tol=None``), else within
        ``tol`` (default :func:`identifiable.numbers.default_tol`)."""
        a, c = self.matrices(), other.matrices()
        if len(a) != len(c) or any(tuple(np.shape(u)) != tuple(np.shape(v))
                                   for u, v in zip(a, c)):
            return False
        if self.exact and other.exact and tol is None:
            return all(u == v or _zero.is_exact_zero(u - v, "theta entry difference")
                       for M, N in zip(a, c) for u, v in zip(list(M), list(N)))
        a, c = self.numeric.matrices(), other.numeric.matrices()
        if tol is None:
            tol = default_tol(*a, *c)
        return self.max_abs_diff(other) <= tol

    def max_abs_diff(self, other: ResidualTheta) -> float:
        return float(max((np.max(np.abs(np.asarray(u) - np.asarray(v)), initial=0.0)
                          for u, v in zip(self.numeric.matrices(), other.numeric.matrices())),
                         default=0.0))

    def __repr__(self) -> str:
        blocks = ", ".join(f"m{b + 1}={np.shape(V)[0]}" for b, (V, _, _) in
                           enumerate(self.blocks))
        return f"ResidualTheta({self.kind}: E{tuple(np.shape(self.embed[0]))}, [{blocks}], " \
               f"O{tuple(np.shape(self.readout[0]))})"


# ---------------------------------------------------------------------------------- layers
class ResidualBlock(Layer):
    """``h -> h + U sigma(V h + c)`` on the stream ``R^{d_stream}`` (extension beyond
    [SMBK26]); parameters ``(V, c, U)``."""

    def __init__(self, d_stream: int, width: int, activation: Activation, bias: bool = True,
                 name: str = "block"):
        self.width, self.activation, self.bias = int(width), activation, bool(bias)
        super().__init__(self._numeric, d_stream, d_stream, symbolic=self._sym, name=name)

    @property
    def n_params(self) -> int:
        return 2 * self.width * self.in_dim + (self.width if self.bias else 0)

    def hidden(self, X: np.ndarray, theta_b: tuple) -> np.ndarray:
        """``a = sigma(V h + c)`` on a batch of stream points."""
        V, c, _ = theta_b
        Z = X @ np.asarray(V, dtype=float).T + np.asarray(c, dtype=float).reshape(1, -1)
        return self.activation(Z)

    def _numeric(self, X: np.ndarray, theta_b: tuple) -> np.ndarray:
        U = np.asarray(theta_b[2], dtype=float)
        return X + self.hidden(X, theta_b) @ U.T

    def hidden_symbolic(self, h: sp.Matrix, theta_b: tuple) -> sp.Matrix:
        V, c, _ = theta_b
        z = sp.Matrix(V) * sp.Matrix(h) + sp.Matrix(c).reshape(self.width, 1)
        return z.applyfunc(self.activation.at)

    def _sym(self, h: sp.Matrix, theta_b: tuple) -> sp.Matrix:
        if self.width == 0:
            return sp.Matrix(h)
        return sp.Matrix(h) + sp.Matrix(theta_b[2]) * self.hidden_symbolic(h, theta_b)


# ---------------------------------------------------------------------------------- model
class ResidualMLP(Model):
    """A residual MLP (extension beyond [SMBK26], see the module docstring).

    Parameters
    ----------
    d_in, d_stream, d_out:
        Input, stream and output widths (``>= 1``).
    blocks:
        The hidden widths ``[m_1, ..., m_B]`` of the blocks (``B >= 0``; a width may be 0).
    activation:
        A name, an :class:`~identifiable.activations.Activation`, or one per block.
    bias:
        Whether ``e``, ``c_b`` and ``o`` are present.
    """

    def __init__(self, d_in: int, d_stream: int, blocks: Sequence[int], d_out: int,
                 activation: Any = "tanh", bias: bool = True):
        dims = {"d_in": d_in, "d_stream": d_stream, "d_out": d_out}
        for name, v in dims.items():
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
        if isinstance(blocks, (str, bytes)) or not hasattr(blocks, "__iter__"):
            raise TypeError(f"blocks: expected a list of block widths, got {blocks!r}")
        blocks = list(blocks)
        if any(isinstance(m, bool) or not isinstance(m, (int, np.integer)) or int(m) < 0
               for m in blocks):
            raise ValueError(f"blocks: expected integers >= 0, got {blocks!r}")
        B = len(blocks)
        if isinstance(activation, (list, tuple)):
            if len(activation) != B:
                raise ValueError(f"activation: expected one activation per block ({B}), got "
                                 f"{len(activation)}")
            acts = [MLP._act(a, f"activation[{b}]") for b, a in enumerate(activation)]
        else:
            acts = [MLP._act(activation, "activation")] * B
        self.d_in, self.d_stream, self.d_out = int(d_in), int(d_stream), int(d_out)
        self.blocks = [int(m) for m in blocks]
        self.activations = acts
        self.bias = bool(bias)
        layers: list[Layer] = [AffineLayer(self.d_in, self.d_stream, None, self.bias, "embed")]
        layers += [ResidualBlock(self.d_stream, m, acts[b], self.bias, f"block_{b + 1}")
                   for b, m in enumerate(self.blocks)]
        layers.append(AffineLayer(self.d_stream, self.d_out, None, self.bias, "readout"))
        super().__init__(layers)

    def __repr__(self) -> str:
        names = sorted({a.name for a in self.activations})
        return (f"ResidualMLP(d_in={self.d_in}, d_stream={self.d_stream}, blocks={self.blocks}, "
                f"d_out={self.d_out}, activation={'/'.join(names) or '-'}"
                f"{'' if self.bias else ', bias=False'})")

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)

    @property
    def hidden_widths(self) -> list[int]:
        """The block hidden widths ``[m_1, ..., m_B]``."""
        return list(self.blocks)

    @property
    def n_params(self) -> int:
        """``dim Theta`` (biases counted only when present)."""
        return sum(layer.n_params for layer in self.layers)

    # ------------------------------------------------------------------ parameters
    def params(self, E: Any, Vs: Sequence[Any], Us: Sequence[Any], O: Any, *,  # noqa: E741
               e: Any = None, cs: Sequence[Any] | None = None, o: Any = None) -> ResidualTheta:
        """Validate and convert parameters: ``E`` ``(d_stream, d_in)``, ``Vs[b]``
        ``(m_b, d_stream)``, ``Us[b]`` ``(d_stream, m_b)``, ``O`` ``(d_out, d_stream)``; biases
        ``e``, ``cs[b]``, ``o`` (None: zero; only with ``bias=True``). Exact (sympy) when every
        entry is exact, symbolic with symbols, float64 otherwise."""
        Vs, Us = list(Vs), list(Us)
        B, d = self.n_blocks, self.d_stream
        if len(Vs) != B or len(Us) != B:
            raise ValueError(f"Vs, Us: expected {B} matrices each (one per block), got "
                             f"{len(Vs)} and {len(Us)}")
        if not self.bias and any(v is not None for v in (e, cs, o)):
            raise ValueError("e, cs, o: this ResidualMLP was built with bias=False")
        if cs is not None and len(list(cs)) != B:
            raise ValueError(f"cs: expected {B} vectors, got {len(list(cs))}")
        cs = [None] * B if cs is None else list(cs)
        mats = [MLP._read(E, "E", (d, self.d_in))]
        vecs = [None if e is None else MLP._read_vec(e, "e", d)]
        for b, m in enumerate(self.blocks):
            mats += [MLP._read(Vs[b], f"Vs[{b}]", (m, d)), MLP._read(Us[b], f"Us[{b}]", (d, m))]
            vecs.append(None if cs[b] is None else MLP._read_vec(cs[b], f"cs[{b}]", m))
        mats.append(MLP._read(O, "O", (self.d_out, d)))
        vecs.append(None if o is None else MLP._read_vec(o, "o", self.d_out))
        kind = param_kind(*mats, *[v for v in vecs if v is not None])
        ex = kind != "float"
        mats = [as_param_matrix(M, ex) for M in mats]
        lens = [d] + self.blocks + [self.d_out]
        vecs = [zero_vector(n, ex) if v is None else as_param_vector(v, ex)
                for n, v in zip(lens, vecs)]
        blocks = tuple((mats[1 + 2 * b], vecs[1 + b], mats[2 + 2 * b]) for b in range(B))
        return ResidualTheta((mats[0], vecs[0]), blocks, (mats[-1], vecs[-1]), kind)

    def check_theta(self, theta: Any, name: str = "theta") -> ResidualTheta:
        if not isinstance(theta, ResidualTheta):
            raise TypeError(f"{name}: expected a ResidualTheta from ResidualMLP.params, got "
                            f"{type(theta).__name__}")
        if len(theta.blocks) != self.n_blocks:
            raise ValueError(f"{name}: has {len(theta.blocks)} blocks, the model has "
                             f"{self.n_blocks}")
        d = self.d_stream
        shapes = [(d, self.d_in), (d,)]
        for m in self.blocks:
            shapes += [(m, d), (m,), (d, m)]
        shapes += [(self.d_out, d), (self.d_out,)]
        for j, (M, want) in enumerate(zip(theta.matrices(), shapes)):
            got = tuple(np.shape(M))
            if len(want) == 1:
                ok = int(np.prod(got)) == want[0] if got else want[0] == 0
            else:
                ok = got == want
            if not ok:
                raise ValueError(f"{name}: parameter {j} has shape {got}, expected {want}")
            if len(want) == 1 and not self.bias and any(
                    v != 0 for v in (list(M) if isinstance(M, sp.MatrixBase)
                                     else np.asarray(M).ravel())):
                raise ValueError(f"{name}: bias-free model, but parameter {j} (a bias) is not 0")
        return theta

    def random_params(self, seed: int | np.random.Generator | None = None, *,
                      exact: bool = False, scale: float = 1.0) -> ResidualTheta:
        """Seeded random parameters: float ``N(0, scale^2 / fan_in)`` entries, or exact small
        non-zero rationals ``p/q`` (``1 <= |p| <= 6``, ``q <= 4``)."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

        def mat(r: int, c: int, bias: bool = False) -> Any:
            if exact:
                ps = rng.integers(1, 7, r * c) * rng.choice([-1, 1], r * c)
                qs = rng.integers(1, 5, r * c)
                return sp.ImmutableMatrix(r, c, [sp.Rational(int(p), int(q))
                                                 for p, q in zip(ps, qs)])
            fan = 1.0 if bias else np.sqrt(max(c, 1))
            return rng.standard_normal((r, c)) * scale / fan * (0.5 if bias else 1.0)

        def vec(n: int) -> Any:
            if not self.bias:
                return None
            v = mat(n, 1, bias=True)
            return v if exact else v.reshape(-1)

        d = self.d_stream
        E, e = mat(d, self.d_in), vec(d)
        Vs, cs, Us = [], [], []
        for m in self.blocks:
            Vs.append(mat(m, d))
            cs.append(vec(m))
            Us.append(mat(d, m))
        O, o = mat(self.d_out, d), vec(self.d_out)
        if not self.bias:
            return self.params(E, Vs, Us, O)
        return self.params(E, Vs, Us, O, e=e, cs=cs, o=o)

    def symbols(self) -> ResidualTheta:
        """Symbolic parameters (real symbols ``E_r_c``, ``e_r``, ``V{b}_r_c``, ``c{b}_r``,
        ``U{b}_r_c``, ``O_r_c``, ``o_r``; 1-based)."""
        def mat(name: str, r: int, c: int) -> sp.ImmutableMatrix:
            return sp.ImmutableMatrix(r, c, lambda p, q: sp.Symbol(f"{name}_{p + 1}_{q + 1}",
                                                                   real=True))

        def vec(name: str, n: int) -> sp.ImmutableMatrix | None:
            if not self.bias:
                return None
            return sp.ImmutableMatrix(n, 1, lambda p, q: sp.Symbol(f"{name}_{p + 1}", real=True))

        d = self.d_stream
        kw = {}
        if self.bias:
            kw = {"e": vec("e", d), "cs": [vec(f"c{b + 1}", m) for b, m in enumerate(self.blocks)],
                  "o": vec("o", self.d_out)}
        return self.params(mat("E", d, self.d_in),
                           [mat(f"V{b + 1}", m, d) for b, m in enumerate(self.blocks)],
                           [mat(f"U{b + 1}", d, m) for b, m in enumerate(self.blocks)],
                           mat("O", self.d_out, d), **kw)

    # ------------------------------------------------------------------ evaluation
    def forward(self, x: Any, theta: Any) -> np.ndarray:
        """``f(x; theta)`` on a batch ``(n, d_in)`` or one vector ``(d_in,)``."""
        theta = self.check_theta(theta)
        return super().forward(x, theta.numeric)

    __call__ = forward

    def latents(self, x: Any, theta: Any) -> list[np.ndarray]:
        """``[x, h_0, h_1, ..., h_B, y]``: the input, the stream points and the output."""
        theta = self.check_theta(theta)
        return super().latents(x, theta.numeric)

    def block_latents(self, x: Any, theta: Any) -> list[np.ndarray]:
        """``[a_1, ..., a_B]`` with ``a_b = sigma(V_b h_{b-1} + c_b)`` (batches)."""
        theta = self.check_theta(theta)
        hs = super().latents(x, theta.numeric)
        return [self.layers[b + 1].hidden(hs[b + 1], theta.numeric.blocks[b])
                for b in range(self.n_blocks)]

    def symbolic(self, theta: Any, x: sp.Matrix | None = None) -> sp.Matrix:
        """``f(x; theta)`` as a sympy column (float parameters are taken as sympy Floats)."""
        theta = self.check_theta(theta)
        if theta.kind == "float":
            theta = self.params(*self._parts(theta, sp.ImmutableMatrix), **self._bias_parts(
                theta, sp.ImmutableMatrix))
        v = input_symbols(self.d_in) if x is None else sp.Matrix(x)
        for layer, th in zip(self.layers, theta):
            v = layer.symbolic(v, th)
        return v

    def _parts(self, theta: ResidualTheta, conv: Any) -> tuple:
        c = lambda M: conv(np.asarray(M).tolist()) if isinstance(M, np.ndarray) else M  # noqa
        return (c(theta.embed[0]), [c(V) for V, _, _ in theta.blocks],
                [c(U) for _, _, U in theta.blocks], c(theta.readout[0]))

    def _bias_parts(self, theta: ResidualTheta, conv: Any) -> dict:
        if not self.bias:
            return {}
        c = lambda v: conv(np.asarray(v).reshape(-1, 1).tolist()) \
            if isinstance(v, np.ndarray) else v  # noqa: E731
        return {"e": c(theta.embed[1]), "cs": [c(cb) for _, cb, _ in theta.blocks],
                "o": c(theta.readout[1])}

    def forward_precise(self, x: Any, theta: Any, dps: int = 60) -> list:
        """``f(x; theta)`` for one input at ``dps`` digits (mpmath; floats at their exact
        binary values): the reference a float64 residual is re-checked against."""
        import mpmath

        theta = self.check_theta(theta)

        def mp(v: Any):
            return mpmath.mpf(sp.N(v, dps + 10)) if isinstance(v, sp.Basic) else \
                mpmath.mpf(float(v))

        def rows(M: Any) -> list[list]:
            arr = M.tolist() if isinstance(M, sp.MatrixBase) else np.asarray(M).tolist()
            return [[mp(v) for v in row] for row in arr]

        def vec(b: Any) -> list:
            return [mp(v) for v in (list(b) if isinstance(b, sp.MatrixBase)
                                    else np.asarray(b).ravel())]

        def aff(M: Any, b: Any, h: list) -> list:
            return [mpmath.fsum(w * v for w, v in zip(row, h)) + bb
                    for row, bb in zip(rows(M), vec(b))]

        with mpmath.workdps(dps):
            xs = [v if isinstance(v, mpmath.mpf) else mp(v) for v in (
                list(x) if isinstance(x, sp.MatrixBase) else np.asarray(x, dtype=object).ravel())]
            h = aff(*theta.embed, xs)
            for b, (V, c, U) in enumerate(theta.blocks):
                a = [self.activations[b].precise(z) for z in aff(V, c, h)]
                Ur = rows(U)
                h = [hv + mpmath.fsum(u * av for u, av in zip(Ur[r], a)) for r, hv in enumerate(h)]
            return aff(*theta.readout, h)

    # ------------------------------------------------------------------ symmetries
    def latent_group(self, j: int) -> LatentGroup:
        """``j = 0``: the stream group ``K_s`` (:class:`StreamAffine` with biases, else
        ``GL(d_stream)``), shared by every stream point ``h_0, ..., h_B``; ``j = b`` in
        ``1..B``: ``K_b``, the intertwiner group of eq. (8) on block ``b``'s hidden layer.
        (Not one group per layer of :attr:`layers`: see the module docstring.)"""
        if not 0 <= j <= self.n_blocks:
            raise ValueError(f"j: 0 (the stream) or a block 1..{self.n_blocks}, got {j}")
        if j == 0:
            return StreamAffine(self.d_stream) if self.bias else GeneralLinear(self.d_stream)
        m = self.blocks[j - 1]
        if m == 0:
            return TrivialGroup()
        act = self.activations[j - 1]
        try:
            return act.intertwiner_group(m)
        except UndecidedError as exc:
            raise UndecidedError(f"block {j} ({act.name}): no derived intertwiner group: {exc}",
                                 exc.verdict) from None

    def latent_groups(self) -> list[LatentGroup]:
        """``[K_s, K_1, ..., K_B]``."""
        return [self.latent_group(j) for j in range(self.n_blocks + 1)]

    def _stream_matrix(self, S: Any) -> Any:
        """The augmented ``(d+1) x (d+1)`` matrix of the stream element."""
        return S if self.bias else affine(S)

    @validates_arguments
    def _k(self, k: Sequence[Any], tol: float | None = None) -> list[tuple]:
        """Validate ``k``; ``[(S^, S^^{-1}), (A_1, B_1, B_1^{-1}), ...]``."""
        k = list(k)
        if len(k) != self.n_blocks + 1:
            raise ValueError(f"k: expected {self.n_blocks + 1} matrices (the stream element, "
                             f"then one per block), got {len(k)}")
        out: list[tuple] = []
        for j, (A, K) in enumerate(zip(k, self.latent_groups())):
            if K.d == 0:
                out.append((A, A, A))
                continue
            n = K.d + 1 if K.family == "affine" else K.d
            Am = as_matrix(A, f"k[{j}]", shape=(n, n))
            v = K.membership(Am, tol)
            if v.holds is not True:
                raise ValueError(f"k[{j}]: not an element of {K.name}: {v.reason}")
            if j == 0:
                Sh = self._stream_matrix(Am)
                Shinv = _zero.inverse(Sh, "S^") if isinstance(Sh, sp.MatrixBase) \
                    else np.linalg.inv(np.asarray(Sh, dtype=float))
                out.append((Sh, Shinv))
                continue
            Bm = K.partner(Am)
            out.append((Am, Bm, K.partner_inverse(Bm)))
        return out

    def transform(self, theta: Any, k: Sequence[Any]) -> ResidualTheta:
        """``k . theta`` for ``k = (S^, A_1, ..., A_B)`` (module docstring): ``E' = S E``,
        ``e' = S e + t``, ``[V_b' | c_b'] = A_b [V_b | c_b] S^^{-1}``, ``U_b' = S U_b B_b^{-1}``,
        ``[O' | o'] = [O | o] S^^{-1}``. Exact for exact ``theta`` and ``k``."""
        theta = self.check_theta(theta)
        parts = self._k(k)
        exact = theta.exact and all(isinstance(p[0], sp.MatrixBase) or np.size(p[0]) == 0
                                    for p in parts)
        d, n_in = self.d_stream, self.d_in
        Sh, Shinv = (as_param_matrix(M, exact) for M in parts[0])
        if exact:
            mul, col = (lambda a, b: sp.Matrix(a) * sp.Matrix(b)), \
                (lambda v, n: sp.Matrix(v).reshape(n, 1))
            join = lambda X, x: sp.Matrix(X).row_join(col(x, X.shape[0]))  # noqa: E731
            fix, vfix = sp.ImmutableMatrix, sp.ImmutableMatrix
        else:
            mul, join = (lambda a, b: a @ b), (lambda X, x: np.hstack(
                [X, np.asarray(x).reshape(-1, 1)]))
            fix, vfix = np.asarray, (lambda v: np.asarray(v).reshape(-1))
        E, e = as_param_matrix(theta.embed[0], exact), as_param_vector(theta.embed[1], exact)
        last = np.eye(1, n_in + 1, n_in)
        Eaug = join(E, e)
        Eaug = Eaug.col_join(sp.Matrix(last.astype(int).tolist())) if exact \
            else np.vstack([Eaug, last])
        top = mul(Sh[:d, :], Eaug)                       # [S E | S e + t]
        mats = [fix(top[:, :n_in]), vfix(top[:, n_in])]
        for b, (V, c, U) in enumerate(theta.blocks):
            V, c = as_param_matrix(V, exact), as_param_vector(c, exact)
            U = as_param_matrix(U, exact)
            if self.blocks[b] == 0:
                mats += [fix(V), vfix(c), fix(U)]
                continue
            A, _, Binv = (as_param_matrix(M, exact) for M in parts[b + 1])
            M2 = mul(mul(A, join(V, c)), Shinv)         # A [V | c] S^^-1
            mats += [fix(M2[:, :d]), vfix(M2[:, d]), fix(mul(mul(Sh[:d, :d], U), Binv))]
        O, o = as_param_matrix(theta.readout[0], exact), as_param_vector(theta.readout[1], exact)
        M2 = mul(join(O, o), Shinv)                     # [O | o] S^^-1
        mats += [fix(M2[:, :d]), vfix(M2[:, d])]
        kind = param_kind(*mats) if exact else "float"
        bl = tuple((mats[2 + 3 * b], mats[3 + 3 * b], mats[4 + 3 * b])
                   for b in range(self.n_blocks))
        return ResidualTheta((mats[0], mats[1]), bl, (mats[-2], mats[-1]), kind)

    # ------------------------------------------------------------------ layer identities
    @validates_arguments
    @_zero.undecided_on_zero_tests
    def check_layers(self, theta: Any, theta2: Any, rho_in: Any, rho_s: Any,
                     rho_blocks: Sequence[Any], rho_out: Any, *, n_samples: int = 64,
                     tol: float | None = None, seed: int = 0) -> Verdict:
        """Every sublayer maps the actions into each other, from ``theta`` to ``theta2``:

        * embedding: ``h_0(rho_in x; theta2) = rho_s h_0(x; theta)``,
        * block hidden map: ``a_b(rho_s h; theta2) = rho_b a_b(h; theta)``,
        * block update: ``rho_s h + U2_b rho_b a = rho_s (h + U_b a)`` for all ``(h, a)``,
        * readout: ``y(rho_s h; theta2) = rho_out y(h; theta)``,

        with ``rho_s`` the augmented stream element (``h -> S h + t``; a ``d x d`` matrix is
        taken as linear) and ``rho_b`` acting on block ``b``'s hidden layer. With
        ``theta2 = k . theta`` and ``rho = k`` (identity on input and output) this is eq. (3);
        with ``theta2 = theta`` and ``rho`` the actions of ``g``, eq. (14) (layerwise
        equivariance, Definition 3.6). Exact for exact inputs (sympy identities in symbols,
        :func:`identifiable.diagrams.expr_is_zero`), else on ``n_samples`` random inputs."""
        from identifiable.diagrams import expr_is_zero

        theta = self.check_theta(theta)
        theta2 = self.check_theta(theta2, "theta2")
        d = self.d_stream
        Sh = rho_s if np.shape(rho_s)[0] == d + 1 else affine(
            rho_s if isinstance(rho_s, sp.MatrixBase) else np.asarray(rho_s, dtype=float))
        mats = [rho_in, Sh, *rho_blocks, rho_out]
        exact = theta.exact and theta2.exact and all(isinstance(M, sp.MatrixBase) or
                                                     np.size(M) == 0 for M in mats)
        if exact:
            S, t = (sp.Matrix(M) for M in split_affine(sp.Matrix(Sh)))
            Rin, Rout = sp.Matrix(rho_in), sp.Matrix(rho_out)
            h = input_symbols(d, "h")
            x = input_symbols(self.d_in, "x")
            checks = [("embedding", self.layers[0].symbolic(Rin * x, theta2.embed),
                       S * self.layers[0].symbolic(x, theta.embed) + t, list(x))]
            for b in range(self.n_blocks):
                m = self.blocks[b]
                if m == 0:
                    continue
                R = sp.Matrix(rho_blocks[b])
                blk = self.layers[b + 1]
                a = input_symbols(m, "a")
                checks.append((f"block {b + 1} hidden map",
                               blk.hidden_symbolic(S * h + t, theta2.blocks[b]),
                               R * blk.hidden_symbolic(h, theta.blocks[b]), list(h)))
                checks.append((f"block {b + 1} update",
                               S * h + t + sp.Matrix(theta2.blocks[b][2]) * R * a,
                               S * (h + sp.Matrix(theta.blocks[b][2]) * a) + t, list(h) + list(a)))
            checks.append(("readout", self.layers[-1].symbolic(S * h + t, theta2.readout),
                           Rout * self.layers[-1].symbolic(h, theta.readout), list(h)))
            for name, lhs, rhs, syms in checks:
                for r in range(lhs.rows):
                    v = expr_is_zero(sp.expand(lhs[r] - rhs[r]) if name.endswith(
                        ("update", "embedding", "readout")) else lhs[r] - rhs[r], syms)
                    if v.status == "refuted":
                        return Verdict.refuted(f"{name}, output {r}: the actions do not match",
                                               counterexample={"sublayer": name, "output": r,
                                                               **v.counterexample})
                    if v.status != "proved":
                        return v.but(reason=f"{name}, output {r}: {v.reason}")
            return Verdict.proved("every sublayer (embedding, block hidden maps and updates, "
                                  "readout) maps the actions into each other exactly "
                                  "(extension beyond [SMBK26])", witness=[Sh, *rho_blocks])
        rng = np.random.default_rng(seed)
        th, th2 = theta.numeric, theta2.numeric
        S, t = split_affine(to_numpy(Sh))
        Rin, Rout = to_numpy(rho_in), to_numpy(rho_out)
        X = rng.standard_normal((n_samples, self.d_in)) * 1.5
        H = rng.standard_normal((n_samples, d)) * 1.5
        HS = H @ S.T + t
        pairs = [("embedding", self.layers[0](X @ Rin.T, th2.embed),
                  self.layers[0](X, th.embed) @ S.T + t)]
        for b in range(self.n_blocks):
            if self.blocks[b] == 0:
                continue
            R = to_numpy(rho_blocks[b])
            blk = self.layers[b + 1]
            Aa = rng.standard_normal((n_samples, self.blocks[b]))
            U, U2 = np.asarray(th.blocks[b][2]), np.asarray(th2.blocks[b][2])
            pairs.append((f"block {b + 1} hidden map", blk.hidden(HS, th2.blocks[b]),
                          blk.hidden(H, th.blocks[b]) @ R.T))
            pairs.append((f"block {b + 1} update", HS + Aa @ R.T @ U2.T,
                          (H + Aa @ U.T) @ S.T + t))
        pairs.append(("readout", self.layers[-1](HS, th2.readout),
                      self.layers[-1](H, th.readout) @ Rout.T))
        worst, t_used = 0.0, 0.0
        for name, lhs, rhs in pairs:
            tt = sample_tol(tol, rhs)
            t_used = max(t_used, tt)
            err = np.abs(lhs - rhs)
            worst = max(worst, float(np.max(err, initial=0.0)))
            if np.max(err, initial=0.0) > tt:
                j, r = np.unravel_index(int(np.argmax(err)), err.shape)
                return Verdict.refuted(f"{name}, output {r}: residual {err[j, r]:.3g} > tol",
                                       counterexample={"sublayer": name, "output": int(r),
                                                       "sample": int(j)},
                                       method="sampled", tol=tt)
        return Verdict.checked("every sublayer maps the actions into each other on random "
                               "inputs (extension beyond [SMBK26])", n_samples=n_samples,
                               tol=t_used, witness=[Sh, *rho_blocks], max_residual=worst)

    def check_symmetry(self, theta: Any, theta2: Any, k: Sequence[Any], **kwargs: Any) -> Verdict:
        """eq. (3) [SMBK26] for residual networks: every sublayer of ``theta2`` is that of
        ``theta`` conjugated by ``k = (S^, A_1, ..., A_B)`` (``k_b`` acting on the block's
        hidden layer by its partner ``B_b``); see :meth:`check_layers`."""
        parts = self._k(k)
        Bs = [p[1] for p in parts[1:]]
        eye_in = sp.eye(self.d_in) if isinstance(parts[0][0], sp.MatrixBase) \
            else np.eye(self.d_in)
        eye_out = sp.eye(self.d_out) if isinstance(parts[0][0], sp.MatrixBase) \
            else np.eye(self.d_out)
        return self.check_layers(theta, theta2, eye_in, parts[0][0], Bs, eye_out, **kwargs)

    def check_invariance(self, theta: Any, k: Sequence[Any], **kwargs: Any) -> Verdict:
        """eq. (3) for ``theta2 = k . theta``."""
        return self.check_symmetry(theta, self.transform(theta, k), k, **kwargs)
