"""Measured latent actions of any finite group on any layer (Theorem 4.1 [SMBK26], measured).

Theorem 4.1 [SMBK26] says that an identifiable network that is equivariant under a finite group
``G`` is *layerwise* equivariant: every latent space ``V_i`` carries an action ``rho_i(g)`` with
``f_i(g x) = rho_i(g) f_i(x)``, and by Remark 4.2 each ``rho_i(g)`` lies in the intertwiner group
``K_i`` of the layer's activation (Section 5.1: signed permutations for tanh, permutations for
GELU / SiLU / sigmoid, positively scaled permutations for ReLU, Lemma 2.2 [BK23]). For a trained
network, equivariant only approximately, :func:`measure_latent_actions` estimates these actions
as Section 6 / Appendix C [SMBK26] do for the mirror, for any finite group given by generators
(a :class:`identifiable.groups.Rep` on the flattened input) and any layer chosen by module name:

* **least squares**: ``A_i(g)`` minimising ``sum |A f_i(x) - f_i(g x)|^2`` over the fit probes;
* **K-constrained**: ``k_i(g)``, the element of ``K_i`` with the smallest least-squares residual
  on the same statistics (a linear assignment, :func:`identifiable.latent_groups.nearest_monomial`
  and :func:`identifiable.torch.measure.best_monomial_fit`), and the distance of ``A_i(g)`` to
  ``K_i``, ``|A - nearest K element|_F / |A|_F``;
* their relative errors on an *independent* draw of probes, median (and mean) over the samples
  of ``|f_i(g x) - A f_i(x)| / |f_i(x)|``, beside the ``identity_error`` (A = I);
* whether ``g -> k_i(g)`` is a homomorphism: the generator images are extended along the words
  of the group (:meth:`identifiable.groups.Rep.extend_with`) and every relation
  ``k(h) k(s) = k(h s)`` (``h`` in ``G``, ``s`` a generator, which includes
  ``k(g)^order(g) = I``) is checked on the signed permutation pattern of the k's.

Latents are the OUTPUTS of the chosen modules, captured by forward hooks in one forward pass per
batch (the probes and their images under every generator concatenated). By default the layers
are the outputs of every activation module of the net. Two latent models:

* **dense** ``(N, d)``: ``A`` is ``d x d``;
* **convolutional** ``(N, C, H, W)`` or ``(N, C, L)``: when a generator acts on the input image
  as a transform of the pixel grid (a flip, a rotation by 90 degrees, a transpose, a cyclic
  shift) times a channel map, its latent action is modelled as the same transform of the
  feature-map grid followed by a ``C x C`` channel map ``A`` (the form of eq. (3) [BK23] for
  group convolutions), fitted by per-pixel regression (pixels as samples, memory O(C^2)). A
  transform that does not carry over to the feature map (a rotation of a non-square map, a shift
  not divisible by the stride) falls back to a dense fit of the flattened latent when that has at
  most :data:`MAX_DENSE` numbers, and raises a clear error otherwise.

Statistics ``Z^T Z`` and ``Z^T Y`` are computed per batch in the network's dtype and accumulated
in float64; nothing loops over samples in Python.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from identifiable.groups import Rep, check_homomorphism
from identifiable.latent_groups import nearest_monomial
from identifiable.torch.measure import best_monomial_fit, solve_normal

__all__ = ["LatentActionRecord", "measure_latent_actions", "image_group", "cyclic_shift",
           "coordinate_permutation", "channel_permutation", "IMAGE_GROUPS", "MAX_DENSE",
           "layer_activation_name"]

#: largest flattened latent fitted densely when a group action does not carry over to the grid
MAX_DENSE = 4096
#: image group specs understood by :func:`image_group`
IMAGE_GROUPS = ("lr", "ud", "rot90", "rot180", "flips", "shift")
#: floor of a denominator where it is 0 (a guard, not a tolerance)
_DIVISION_GUARD = 1e-30
_K_NAMES = {"one": "permutations", "sign": "signed permutations",
            "positive": "positively scaled permutations", "nonzero": "monomial matrices"}


# ------------------------------------------------------------------------------- group specs
def _grid_rep(shape: Sequence[int], transforms: Sequence[Callable[[np.ndarray], np.ndarray]],
              name: str) -> Rep:
    shape = tuple(int(s) for s in shape)
    idx = np.arange(math.prod(shape)).reshape(shape)
    perms = []
    for t in transforms:
        src = np.ascontiguousarray(t(idx)).ravel()      # (M x)[j] = x[src[j]]
        perm = np.empty_like(src)
        perm[src] = np.arange(src.size)                  # M e_i = e_{perm[i]}
        perms.append(perm)
    return Rep.from_permutations(perms, name=name)


def _check_shape(shape: Any, name: str = "shape") -> tuple[int, ...]:
    try:
        out = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{name}: expected a sequence of positive integers, got {shape!r}") \
            from None
    if not out or any(s < 1 for s in out):
        raise ValueError(f"{name}: expected positive sizes, got {shape!r}")
    return out


def image_group(kind: str, shape: Sequence[int]) -> Rep:
    """A group acting on inputs of ``shape`` (``C x H x W`` images, ``C x L`` sequences or
    ``d`` vectors), flattened row-major, as signed permutations (no dense matrix is built).

    ``kind``: ``"lr"`` (mirror of the last axis, Section 6 [SMBK26], [BK23]), ``"ud"`` (mirror
    of the second-last axis; the reference never trained by the library's recipes),
    ``"rot90"`` (rotation by 90 degrees, order 4, square images), ``"rot180"``, ``"flips"``
    (generated by ``lr`` and ``ud``, order 4) or ``"shift"`` (cyclic shift by one along the last
    axis).
    """
    shape = _check_shape(shape)
    if kind not in IMAGE_GROUPS:
        raise ValueError(f"kind: expected one of {IMAGE_GROUPS}, got {kind!r}")
    lr = lambda a: a[..., ::-1]  # noqa: E731
    ud = lambda a: a[..., ::-1, :]  # noqa: E731
    need_2d = kind in ("ud", "rot90", "rot180", "flips")
    if need_2d and len(shape) < 3:
        raise ValueError(f"kind: {kind!r} acts on C x H x W images, but the input shape is "
                         f"{shape}")
    if kind == "rot90" and shape[-1] != shape[-2]:
        raise ValueError(f"kind: 'rot90' needs square images, but the input shape is {shape}")
    name = f"{kind}{shape}"
    if kind == "lr":
        return _grid_rep(shape, [lr], name)
    if kind == "ud":
        return _grid_rep(shape, [ud], name)
    if kind == "rot90":
        return _grid_rep(shape, [lambda a: np.rot90(a, 1, axes=(-2, -1))], name)
    if kind == "rot180":
        return _grid_rep(shape, [lambda a: a[..., ::-1, ::-1]], name)
    if kind == "flips":
        return _grid_rep(shape, [lr, ud], name)
    return _grid_rep(shape, [lambda a: np.roll(a, 1, axis=-1)], name)


def cyclic_shift(n: int, shift: int = 1) -> Rep:
    """The cyclic group generated by the shift ``x_i -> x_{i - shift mod n}`` of ``R^n``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected a positive integer, got {n!r}")
    return _grid_rep((int(n),), [lambda a: np.roll(a, int(shift))], f"cyclic_shift({n},{shift})")


def coordinate_permutation(perm: Sequence[int] | Sequence[Sequence[int]]) -> Rep:
    """The group generated by one or several permutations of the input coordinates, each given
    as ``perm`` with ``(g x)[perm[i]] = x[i]`` (``M e_i = e_{perm[i]}``)."""
    perms = [perm] if np.ndim(perm) == 1 else list(perm)
    return Rep.from_permutations(perms, name="coordinate_permutation")


def channel_permutation(perm: Sequence[int], shape: Sequence[int]) -> Rep:
    """Permutation of the channels of ``C x ...`` inputs: channel ``c`` moves to ``perm[c]``."""
    shape = _check_shape(shape)
    p = np.asarray(perm)
    if p.ndim != 1 or p.shape[0] != shape[0] or sorted(p.tolist()) != list(range(shape[0])):
        raise ValueError(f"perm: expected a permutation of the {shape[0]} channels of {shape}, "
                         f"got {list(np.ravel(perm))[:20]}")
    inv = np.argsort(p)
    return _grid_rep(shape, [lambda a: a[inv]], f"channel_permutation{shape}")


# ------------------------------------------------------------------------------- grid ops
@dataclass(frozen=True)
class _GridOp:
    """A transform of the pixel grid: ``T(x)[p] = x[src[p]]`` for ``src = op(arange(P))``."""

    name: str
    fn: Callable[[np.ndarray], np.ndarray] | None = None
    shift: tuple[int, ...] = ()
    grid: tuple[int, ...] = ()

    def src(self, grid: tuple[int, ...]) -> np.ndarray | None:
        """The source pixel of each pixel of a feature map with ``grid``, or None when the
        transform does not carry over to that grid."""
        idx = np.arange(math.prod(grid)).reshape(grid)
        if self.fn is not None:
            if self.name in _SQUARE_OPS and grid[0] != grid[1]:
                return None
            return np.ascontiguousarray(self.fn(idx)).ravel()
        shift = []
        for s, n_in, n in zip(self.shift, self.grid, grid):
            if n_in % n or s % (n_in // n):
                return None
            shift.append(s // (n_in // n))
        return np.roll(idx, tuple(shift), axis=tuple(range(len(grid)))).ravel()


_SQUARE_OPS = ("rot90", "rot270", "transpose", "antitranspose")
_OPS_2D: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda a: a, "lr": lambda a: a[:, ::-1], "ud": lambda a: a[::-1, :],
    "rot180": lambda a: a[::-1, ::-1], "rot90": lambda a: np.rot90(a, 1),
    "rot270": lambda a: np.rot90(a, 3), "transpose": lambda a: a.T,
    "antitranspose": lambda a: a[::-1, ::-1].T}
_OPS_1D: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda a: a, "lr": lambda a: a[::-1]}


def _grid_op(src: np.ndarray, sign: np.ndarray | None, in_shape: tuple[int, ...]
             ) -> _GridOp | None:
    """The grid transform T with ``(g x)[c, p] = s_c x[pi(c), T p]``, if g has that form."""
    if len(in_shape) not in (2, 3):
        return None
    C, grid = in_shape[0], in_shape[1:]
    P = math.prod(grid)
    s = src.reshape(C, P)
    ch, pix = s // P, s % P
    if not (ch == ch[:, :1]).all() or not (pix == pix[:1]).all():
        return None
    if sign is not None and not (sign.reshape(C, P) == sign.reshape(C, P)[:, :1]).all():
        return None
    pix0 = pix[0]
    idx = np.arange(P).reshape(grid)
    for name, fn in (_OPS_2D if len(grid) == 2 else _OPS_1D).items():
        if name in _SQUARE_OPS and grid[0] != grid[1]:
            continue
        if np.array_equal(np.ascontiguousarray(fn(idx)).ravel(), pix0):
            return _GridOp(name, fn)
    origin = np.unravel_index(int(pix0[0]), grid)
    shift = tuple(int((-o) % n) for o, n in zip(origin, grid))
    if np.array_equal(np.roll(idx, shift, axis=tuple(range(len(grid)))).ravel(), pix0):
        return _GridOp(f"shift{shift}", None, shift, tuple(grid))
    return None


# ------------------------------------------------------------------------------- input action
class _InputAction:
    """The generators of ``rep`` applied to batches: signed permutations as index gathers
    (converted once), other matrices by a float matmul."""

    def __init__(self, rep: Rep, in_shape: tuple[int, ...], device, dtype):
        self.rep, self.in_shape = rep, in_shape
        self.gathers: list[tuple[Tensor, Tensor | None] | None] = []
        self.dense: list[Tensor | None] = []
        self.grid_ops: list[_GridOp | None] = []
        for j in rep.generator_indices:
            sp_ = rep.signed_permutation(j)
            if sp_ is None:
                M = np.asarray(rep.element(j), dtype=np.float64)
                self.gathers.append(None)
                self.dense.append(torch.as_tensor(M.T, dtype=dtype, device=device))
                self.grid_ops.append(None)
                continue
            perm, signs = sp_
            src = np.empty_like(perm)
            src[perm] = np.arange(perm.size)            # (M x)[j] = sign x[src[j]]
            sgn = signs[src]
            sign_t = None if (sgn == 1).all() else torch.as_tensor(sgn, dtype=dtype,
                                                                   device=device)
            self.gathers.append((torch.as_tensor(src, device=device), sign_t))
            self.dense.append(None)
            self.grid_ops.append(_grid_op(src, None if sign_t is None else sgn, in_shape))

    def apply(self, k: int, x: Tensor) -> Tensor:
        flat = x.reshape(x.shape[0], -1)
        g = self.gathers[k]
        if g is None:
            out = flat @ self.dense[k]
        else:
            out = flat.index_select(1, g[0])
            if g[1] is not None:
                out = out * g[1]
        return out.view(x.shape)


# ------------------------------------------------------------------------------- activations
def _elu(alpha: float):
    import sympy as sp

    from identifiable.activations import from_sympy

    x = sp.Symbol("x", real=True)
    a = sp.Rational(str(alpha))
    return from_sympy(sp.Piecewise((x, x >= 0), (a * (sp.exp(x) - 1), True)), x, f"elu:{alpha}")


@functools.lru_cache(maxsize=32)
def _activation(name: str):
    from identifiable import activations

    if name.startswith("elu:"):
        return _elu(float(name.split(":", 1)[1]))
    return activations.get(name)


def layer_activation_name(module: nn.Module) -> str | None:
    """The library activation name (:func:`identifiable.activations.get`) of a torch module:
    ``nn.Tanh`` -> ``"tanh"``, ``nn.ReLU`` -> ``"relu"``, ``nn.GELU`` -> ``"gelu"``, ``nn.SiLU``
    -> ``"silu"``, ``nn.Sigmoid``, ``nn.Softplus`` (beta 1), ``nn.LeakyReLU``, ``nn.ELU``,
    ``nn.Identity``; a module with a string attribute ``activation`` (the layers of
    :mod:`identifiable.torch.nets`); an ``nn.Sequential`` ending in one of those. Else None."""
    from identifiable.torch.bridge import activation_name as _name

    if isinstance(module, nn.ELU):
        return f"elu:{module.alpha}"
    name = _name(module)
    if name is not None:
        return name
    act = getattr(module, "activation", None)
    if isinstance(act, str) and act in ("tanh", "gelu", "relu", "sigmoid", "softplus",
                                        "identity"):
        return act
    if isinstance(module, nn.Sequential) and len(module) > 0:
        return layer_activation_name(module[-1])
    return None


def _latent_group(act: str | None, d: int):
    """(family, scalings kind, display name) of K for a latent of width d, or Nones."""
    if act is None:
        return None, None, None
    try:
        K = _activation(act).intertwiner_group(d)
    except ValueError:      # UndecidedError is a ValueError: K not derived
        return None, None, None
    if K.family == "monomial":
        kind = K.scalings.kind
        return "monomial", kind, _K_NAMES[kind]
    if K.family == "GL":
        return "GL", None, f"GL({d})"
    return None, None, None


# ------------------------------------------------------------------------------- records
@dataclass
class LatentActionRecord:
    """The measured latent action of one generator on one layer (Theorem 4.1 [SMBK26]).

    ``A`` is the least-squares map, ``k`` the best element of ``K`` (dense, or None where the
    layer's activation gives no derived K); both act on the channels of a convolutional latent
    after the grid transform ``spatial``. Errors are medians (and ``*_mean`` means) over the
    ``n_eval`` held-out probes of ``|f(g x) - M f(x)| / |f(x)|``.
    """

    layer: str
    generator: int
    generator_word: str
    generator_order: int
    group: str | None
    activation: str | None
    K: str | None
    latent_shape: tuple[int, ...]
    model: str
    spatial: str | None
    ls_error: float
    k_error: float | None
    identity_error: float
    ls_error_mean: float
    k_error_mean: float | None
    identity_error_mean: float
    dist_to_K: float | None
    homomorphism: bool | None
    power_is_identity: bool | None
    relation_error: float | None
    mean_ratio: float
    n_fit: int
    n_eval: int
    n_fit_rows: int
    probe: str
    A: np.ndarray = field(repr=False)
    k: np.ndarray | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: every scalar field, and ``k`` as ``k_perm`` / ``k_values`` (row i of k has
        its non-zero ``k_values[i]`` in column ``k_perm[i]``) for a monomial k."""
        d = {name: getattr(self, name) for name in (
            "layer", "generator", "generator_word", "generator_order", "group", "activation",
            "K", "model", "spatial", "ls_error", "k_error", "identity_error", "ls_error_mean",
            "k_error_mean", "identity_error_mean", "dist_to_K", "homomorphism",
            "power_is_identity", "relation_error", "mean_ratio", "n_fit", "n_eval", "n_fit_rows",
            "probe")}
        d["latent_shape"] = list(self.latent_shape)
        if self.k is not None and self.K is not None and self.K in _K_NAMES.values():
            perm = np.abs(self.k).argmax(axis=1)
            d["k_perm"] = perm.tolist()
            d["k_values"] = self.k[np.arange(self.k.shape[0]), perm].tolist()
        d.update(self.extra)
        return d


# ------------------------------------------------------------------------------- helpers
@dataclass
class _Model:
    """How one (layer, generator) latent is regressed."""

    kind: str                      # "dense" | "grid" | "flat" | "output"
    d: int
    src: Tensor | None = None      # grid: source pixel of each feature-map pixel
    spatial: str | None = None

    @property
    def gram_key(self) -> str:
        return "grid" if self.kind == "grid" else "flat"


def _rows(z: Tensor, model: _Model) -> Tensor:
    """Samples of the regression: ``(N * pixels) x C`` for grid latents, ``N x d`` else."""
    if model.kind == "grid":
        return z.flatten(2).transpose(1, 2)               # N x P x C (a view)
    return z.reshape(z.shape[0], 1, -1)


def _transformed(zr: Tensor, model: _Model) -> Tensor:
    if model.kind == "grid" and model.src is not None:
        return zr.index_select(1, model.src)
    return zr


def _gram_into(acc: Tensor, Z: Tensor) -> None:
    """``acc += Z^T Z`` (float64 accumulator; three of four blocks for wide Z)."""
    d = Z.shape[1]
    if d >= 128:
        h = d // 2
        a, b = Z[:, :h], Z[:, h:]
        ab = (a.T @ b).double()
        acc[:h, :h] += (a.T @ a).double()
        acc[h:, h:] += (b.T @ b).double()
        acc[:h, h:] += ab
        acc[h:, :h] += ab.T
    else:
        acc += (Z.T @ Z).double()


def _sp_parts(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column form of a monomial matrix: ``k e_c = vals[c] e_{perm[c]}``."""
    perm = np.abs(k).argmax(axis=0)
    return perm, k[perm, np.arange(k.shape[1])]


def _homomorphism(rep: Rep, ks: list[np.ndarray]) -> tuple[bool, list[bool], float]:
    """Is ``g -> k(g)`` a homomorphism (on the signed permutation pattern)? Returns the answer,
    ``k(g)^order(g) = I`` per generator, and the largest relative deviation of the values
    along the relations (0 for exact (signed) permutations)."""
    parts = [_sp_parts(k) for k in ks]
    d = ks[0].shape[0]
    ident = (np.arange(d), np.ones(d))

    def compose(a, b):      # a @ b
        return a[0][b[0]], a[1][b[0]] * b[1]

    rho = rep.extend_with(parts, compose, ident)
    gens = rep.generator_indices
    ok, rel = True, 0.0
    for i in range(rep.order):
        for k, s in enumerate(gens):
            want = rho[rep.multiply(i, s)]
            got = compose(rho[i], parts[k])
            if not np.array_equal(want[0], got[0]) or \
                    not np.array_equal(np.sign(want[1]), np.sign(got[1])):
                ok = False
                continue
            scale = max(float(np.abs(want[1]).max()), _DIVISION_GUARD)
            rel = max(rel, float(np.abs(want[1] - got[1]).max()) / scale)
    powers = []
    for k, s in enumerate(gens):
        n, p = rep.element_order(s), ident
        for _ in range(n):
            p = compose(p, parts[k])
        powers.append(bool(np.array_equal(p[0], ident[0]) and np.all(np.sign(p[1]) > 0)))
    return ok, powers, rel


def _declared_input(module: nn.Module) -> tuple[str, int] | None:
    """What the module declares about its input: ("numbers", n) or ("channels", c)."""
    shape = getattr(module, "in_shape", None)
    if shape is not None:
        try:
            return "numbers", int(math.prod(shape))
        except TypeError:
            return None
    for m in module.modules():
        if next(m.children(), None) is not None:
            continue
        if isinstance(m, nn.Linear):
            return "numbers", m.in_features
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            return "channels", m.in_channels
        return None
    return None


def _default_layers(module: nn.Module) -> list[str]:
    names = []
    for name, m in module.named_modules():
        if not name or isinstance(m, (nn.Identity, nn.Sequential)):
            continue
        if layer_activation_name(m) is not None:
            names.append(name)
    return names


class _AllCaptured(Exception):
    pass


class _Capture:
    """Forward hooks storing the output of each named module (once per forward pass)."""

    def __init__(self, modules: dict[str, nn.Module], names: list[str], stop: bool):
        self.out: dict[str, Tensor] = {}
        self.names, self.stop = names, stop
        self.handles = [modules[n].register_forward_hook(self._hook(n)) for n in names]

    def _hook(self, name: str):
        def hook(mod, inp, out):
            if name in self.out:
                raise ValueError(f"layers: module {name!r} runs more than once in one forward "
                                 "pass (a shared module), so its output is not one latent")
            if not isinstance(out, Tensor):
                raise ValueError(f"layers: module {name!r} returns {type(out).__name__}, not a "
                                 "tensor")
            self.out[name] = out
            if self.stop and len(self.out) == len(self.names):
                raise _AllCaptured
        return hook

    def run(self, module: nn.Module, x: Tensor) -> tuple[dict[str, Tensor], Tensor | None]:
        self.out = {}
        y = None
        try:
            y = module(x)
        except _AllCaptured:
            pass
        missing = [n for n in self.names if n not in self.out]
        if missing:
            raise ValueError(f"layers: modules {missing} did not run in the forward pass")
        return self.out, y

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def _as_rep(rep: Any, name: str) -> Any:
    """A list of generator matrices (as everywhere in the library) as a ``Rep``; anything else
    unchanged (the caller checks its type)."""
    if not isinstance(rep, (list, tuple)):
        return rep
    try:
        return Rep(list(rep), name=name)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: {exc}") from None


# ------------------------------------------------------------------------------- main entry
@torch.no_grad()
def measure_latent_actions(module: nn.Module, rep_in: Rep | str,
                           probes: Tensor | Callable[[int, torch.Generator], Tensor],
                           rep_out: Rep | None = None, layers: Sequence[str] | None = None, *,
                           n_fit: int | None = None, n_eval: int | None = None, seed: int = 0,
                           batch_size: int | None = None, probe_name: str | None = None
                           ) -> list[LatentActionRecord]:
    """Fit and evaluate the latent actions of Theorem 4.1 [SMBK26] on a trained network.

    Parameters
    ----------
    module:
        The network (run in eval mode; its mode is restored afterwards).
    rep_in:
        The group on the flattened input: a :class:`identifiable.groups.Rep` (signed permutation
        generators are applied as index gathers, others by matmul) or an :func:`image_group`
        spec (``"lr"``, ``"ud"``, ``"rot90"``, ...) for the probes' shape.
    probes:
        Inputs ``N x ...`` (split at random into the fit and the held-out evaluation draw) or a
        callable ``(n, torch.Generator) -> tensor`` drawing ``n`` inputs, e.g.
        :func:`identifiable.torch.measure.noise_probe` (then the two draws are independent).
    rep_out:
        Optional group on the flattened output, with one generator per generator of ``rep_in``:
        adds an ``"output"`` record whose ``k`` is the given ``rep_out(g)`` (Definition 3.6).
    layers:
        Module names (``module.named_modules()``) whose outputs are the latents; default: every
        activation module.
    n_fit:
        Probes for the fit (and ``n_eval`` for the errors; default: half of the tensor each;
        for a callable 100,000 each).
    n_eval:
        Probes for the errors, see ``n_fit``.
    batch_size:
        Probes per forward pass (default: sized from the latents, at most 8192).

    Returns
    -------
    list of LatentActionRecord
        One record per (layer, generator), layers in forward order.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
    params = next(module.parameters(), None)
    dev = params.device if params is not None else torch.device("cpu")
    dtype = params.dtype if params is not None and params.is_floating_point() else torch.float32
    gen = torch.Generator().manual_seed(int(seed))
    src = _probe_source(probes, n_fit, n_eval, seed, gen, probe_name)
    rep_in, rep_out = _groups(module, rep_in, rep_out, src.in_shape)
    n_gens = len(rep_in.generator_indices)
    action = _InputAction(rep_in, src.in_shape, dev, dtype)
    modules = dict(module.named_modules())
    names = _layer_names(module, modules, layers)

    was_training = module.training
    inplace = [m for m in module.modules() if getattr(m, "inplace", False) is True]
    module.eval()
    for m in inplace:
        m.inplace = False
    cap = _Capture(modules, names, stop=rep_out is None)
    try:
        order_names, shapes, models, groups_of = _latent_models(
            module, modules, cap, src, action, rep_out, n_gens, dev, dtype)
        per_sample = sum(math.prod(s) for s in shapes.values()) + math.prod(src.in_shape)
        bs = int(batch_size) if batch_size else max(16, min(8192, 2**24 // max(
            per_sample * (1 + n_gens), 1)))
        if bs < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")

        def batches(which: str, n: int):
            """``(b, latents)`` per batch of ``which`` probes: the latents of the ``b``
            probes followed by those of their images under each generator."""
            for s in range(0, n, bs):
                x = src.draw(which, s, min(bs, n - s)).to(dev, dtype)
                b = x.shape[0]
                xs = torch.cat([x] + [action.apply(k, x) for k in range(n_gens)])
                outs, y = cap.run(module, xs)
                if rep_out is not None:
                    outs = {**outs, "output": y}
                yield b, {n: outs[n] for n in order_names}

        stats = _fit_statistics(batches("fit", src.n_fit), order_names, models, n_gens, dev)
        fits = _solve_fits(models, stats, groups_of, rep_in, rep_out)
        errs = _held_out_errors(batches("eval", src.n_eval), order_names, models, fits,
                                n_gens, dtype, dev)
    finally:
        cap.close()
        for m in inplace:
            m.inplace = True
        module.train(was_training)
    hom = _homomorphisms(rep_in, rep_out, order_names, fits, n_gens)
    return _records(rep_in, order_names, shapes, models, fits, errs, hom, src, n_gens)


@dataclass
class _ProbeSource:
    """Where the fit and evaluation probes come from: ``draw(which, start, n)``."""

    draw: Callable[[str, int, int], Tensor]
    in_shape: tuple[int, ...]
    n_fit: int
    n_eval: int
    desc: str


def _probe_source(probes: Any, n_fit: int | None, n_eval: int | None, seed: int,
                  gen: torch.Generator, probe_name: str | None) -> _ProbeSource:
    """The probes of :func:`measure_latent_actions`: a tensor split at random into the fit and
    the held-out draw, or a callable drawing independent probes for each."""
    if isinstance(probes, Tensor):
        if probes.dim() < 2 or probes.shape[0] < 2:
            raise ValueError(f"probes: expected a tensor N x ... with N >= 2 inputs, got shape "
                             f"{tuple(probes.shape)}")
        n_total = probes.shape[0]
        n_eval = n_total // 2 if n_eval is None else int(n_eval)
        n_fit = n_total - n_eval if n_fit is None else int(n_fit)
        if n_eval < 1 or n_fit < 1 or n_fit + n_eval > n_total:
            raise ValueError(f"n_fit, n_eval: {n_fit} + {n_eval} probes do not fit in the "
                             f"{n_total} given probes (each at least 1)")
        order = torch.randperm(n_total, generator=gen).to(probes.device)
        pools = {"eval": order[:n_eval], "fit": order[n_eval:n_eval + n_fit]}

        def draw(which: str, start: int, n: int) -> Tensor:
            return probes.index_select(0, pools[which][start:start + n])

        return _ProbeSource(draw, tuple(probes.shape[1:]), n_fit, n_eval,
                            probe_name or f"given tensor of {n_total} inputs, split at random")
    if callable(probes):
        n_fit = 100_000 if n_fit is None else int(n_fit)
        n_eval = n_fit if n_eval is None else int(n_eval)
        if n_fit < 1 or n_eval < 1:
            raise ValueError(f"n_fit, n_eval: expected positive counts, got {n_fit}, {n_eval}")
        sample = probes(1, torch.Generator().manual_seed(int(seed)))
        if not isinstance(sample, Tensor) or sample.dim() < 2 or sample.shape[0] != 1:
            raise ValueError(f"probes: the callable must return a tensor n x ... for n = 1, got "
                             f"{getattr(sample, 'shape', type(sample).__name__)}")
        in_shape = tuple(sample.shape[1:])

        def draw(which: str, start: int, n: int) -> Tensor:
            x = probes(n, gen)
            if not isinstance(x, Tensor) or tuple(x.shape) != (n, *in_shape):
                raise ValueError(f"probes: the callable returned shape "
                                 f"{tuple(getattr(x, 'shape', ()))} for n = {n}, expected "
                                 f"{(n, *in_shape)}")
            return x

        return _ProbeSource(draw, in_shape, n_fit, n_eval,
                            probe_name or getattr(probes, "__qualname__", "callable"))
    raise TypeError(f"probes: expected a tensor of inputs or a callable (n, generator) -> "
                    f"tensor, got {type(probes).__name__}")


def _groups(module: nn.Module, rep_in: Any, rep_out: Any, in_shape: tuple[int, ...]
            ) -> tuple[Rep, Rep | None]:
    """``rep_in`` (a :class:`Rep` or an :func:`image_group` spec) and ``rep_out``, checked
    against the probes' shape and the module's declared input."""
    d_in = math.prod(in_shape)
    if isinstance(rep_in, str):
        rep_in = image_group(rep_in, in_shape)
    rep_in = _as_rep(rep_in, "rep_in")
    if not isinstance(rep_in, Rep):
        raise TypeError(f"rep_in: expected an identifiable.groups.Rep, a list of generator "
                        f"matrices or one of {IMAGE_GROUPS}, got {type(rep_in).__name__}")
    declared = _declared_input(module)
    if declared is not None and declared[0] == "numbers" and declared[1] != rep_in.dim:
        raise ValueError(f"rep_in: acts on R^{rep_in.dim}, but the module's input has "
                         f"{declared[1]} numbers")
    if d_in != rep_in.dim:
        raise ValueError(f"probes: each probe has shape {in_shape} ({d_in} numbers), but rep_in "
                         f"acts on R^{rep_in.dim}")
    if declared is not None and declared[0] == "channels" and in_shape[0] != declared[1]:
        raise ValueError(f"probes: each probe has shape {in_shape}, but the module's first "
                         f"convolution expects {declared[1]} input channels")
    n_gens = len(rep_in.generator_indices)
    if rep_out is not None:
        rep_out = _as_rep(rep_out, "rep_out")
        if not isinstance(rep_out, Rep):
            raise TypeError(f"rep_out: expected an identifiable.groups.Rep, got "
                            f"{type(rep_out).__name__}")
        if len(rep_out.generator_indices) != n_gens:
            raise ValueError(f"rep_out: has {len(rep_out.generator_indices)} generators, rep_in "
                             f"{n_gens}; give one output generator per input generator")
    return rep_in, rep_out


def _layer_names(module: nn.Module, modules: dict[str, nn.Module],
                 layers: Sequence[str] | str | None) -> list[str]:
    """The measured modules: ``layers`` (checked) or every activation module."""
    if layers is None:
        names = _default_layers(module)
        if not names:
            raise ValueError("layers: the module has no activation modules (nn.Tanh, nn.ReLU, "
                             "...); name the layers whose outputs to measure")
        return names
    if isinstance(layers, str):
        layers = [layers]
    names = list(dict.fromkeys(layers))
    unknown = [n for n in names if n not in modules or n == ""]
    if unknown:
        known = [n for n in modules if n]
        raise ValueError(f"layers: no module named {unknown} in the module; known: "
                         f"{known[:30]}{' ...' if len(known) > 30 else ''}")
    return names


def _latent_models(module: nn.Module, modules: dict[str, nn.Module], cap: _Capture,
                   src: _ProbeSource, action: _InputAction, rep_out: Rep | None, n_gens: int,
                   dev, dtype):
    """One full forward pass on two probes: the layers in forward order, their latent shapes,
    the latent model of every (layer, generator) and its intertwiner group K (Remark 4.2)."""
    x0 = src.draw("fit", 0, 2).to(dev, dtype)
    cap.stop = False        # a full pass: a module that runs twice is found here
    try:
        outs, y0 = cap.run(module, torch.cat([x0, action.apply(0, x0)]))
    except RuntimeError as exc:
        raise ValueError(f"probes: the module does not run on probes of shape {src.in_shape} "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    cap.stop = rep_out is None
    order_names = [n for n in cap.out]          # forward order
    shapes = {n: tuple(outs[n].shape[1:]) for n in order_names}
    if rep_out is not None:
        order_names.append("output")
        shapes["output"] = tuple(y0.shape[1:])
        if math.prod(shapes["output"]) != rep_out.dim:
            raise ValueError(f"rep_out: acts on R^{rep_out.dim}, but the module's output has "
                             f"shape {shapes['output']}")
    models: dict[tuple[str, int], _Model] = {}
    for n in order_names:
        for k in range(n_gens):
            models[(n, k)] = _model_for(n, shapes[n], src.in_shape, action.grid_ops[k], dev,
                                        rep_out is not None and n == "output")
    groups_of = {}
    for (n, k), mdl in models.items():
        if n == "output":
            groups_of[(n, k)] = (None, None, "given by rep_out", None)
            continue
        act = layer_activation_name(modules[n])
        groups_of[(n, k)] = (*_latent_group(act, mdl.d), act)
    return order_names, shapes, models, groups_of


@dataclass
class _FitStatistics:
    """Streamed statistics of the fit: ``Z^T Z``, column sums and row counts per (layer,
    latent model), ``Z^T Y`` per (layer, generator); float64, memory O(d^2)."""

    grams: dict[tuple[str, str], Tensor] = field(default_factory=dict)
    sums: dict[tuple[str, str], Tensor] = field(default_factory=dict)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    cross: dict[tuple[str, int], Tensor] = field(default_factory=dict)


def _fit_statistics(batches, order_names: list[str], models: dict[tuple[str, int], _Model],
                    n_gens: int, dev) -> _FitStatistics:
    """Accumulate the normal equations of every least-squares fit over the fit probes."""
    st = _FitStatistics()
    for b, outs in batches:
        for n in order_names:
            z_all = outs[n]
            done: set[str] = set()
            for k in range(n_gens):
                mdl = models[(n, k)]
                z, y = z_all[:b], z_all[(k + 1) * b:(k + 2) * b]
                zr = _rows(z, mdl)
                key = (n, mdl.gram_key)
                if mdl.gram_key not in done:
                    done.add(mdl.gram_key)
                    Z = zr.reshape(-1, mdl.d)
                    if key not in st.grams:
                        st.grams[key] = torch.zeros(mdl.d, mdl.d, dtype=torch.float64,
                                                    device=dev)
                        st.sums[key] = torch.zeros(mdl.d, dtype=torch.float64, device=dev)
                        st.counts[key] = 0
                    _gram_into(st.grams[key], Z)
                    st.sums[key] += Z.sum(0).double()
                    st.counts[key] += Z.shape[0]
                Zt = _transformed(zr, mdl).reshape(-1, mdl.d)
                Y = _rows(y, mdl).reshape(-1, mdl.d)
                if (n, k) not in st.cross:
                    st.cross[(n, k)] = torch.zeros(mdl.d, mdl.d, dtype=torch.float64,
                                                   device=dev)
                st.cross[(n, k)] += (Zt.T @ Y).double()
    return st


def _solve_fits(models: dict[tuple[str, int], _Model], st: _FitStatistics, groups_of: dict,
                rep_in: Rep, rep_out: Rep | None) -> dict[tuple[str, int], dict[str, Any]]:
    """Per (layer, generator): the least-squares ``A``, the nearest element ``k`` of K (or
    ``rep_out``'s matrix for the output), ``A``'s distance to K and the mean ratio."""
    fits: dict[tuple[str, int], dict[str, Any]] = {}
    for (n, k), mdl in models.items():
        key = (n, mdl.gram_key)
        G = st.grams[key].cpu().numpy()
        C = st.cross[(n, k)].cpu().numpy()
        G = (G + G.T) / 2
        A = solve_normal(G, C)
        family, kind, kname, act = groups_of[(n, k)]
        f: dict[str, Any] = {"A": A, "family": family, "kind": kind, "K": kname,
                             "act": act, "k": None, "dist": None}
        m = st.sums[key].cpu().numpy() / max(st.counts[key], 1)
        var = max(np.trace(G) / max(st.counts[key], 1) - m @ m, 0.0)
        f["mean_ratio"] = float(np.sqrt(m @ m) / np.sqrt(var)) if var > 0 else float("inf")
        nA = max(float(np.linalg.norm(A)), 1e-300)
        if mdl.kind == "output":
            kk = np.asarray(rep_out.element(rep_out.generator_indices[k]), dtype=np.float64)
            f["k"], f["dist"] = kk, float(np.linalg.norm(A - kk) / nA)
        elif family == "monomial":
            f["k"] = best_monomial_fit(G, C, kind)
            f["dist"] = float(np.linalg.norm(A - nearest_monomial(A, kind)) / nA)
        elif family == "GL":
            f["k"], f["dist"] = A, 0.0
        f["n_rows"] = st.counts[key]
        fits[(n, k)] = f
    return fits


def _held_out_errors(batches, order_names: list[str], models: dict[tuple[str, int], _Model],
                     fits: dict, n_gens: int, dtype, dev) -> dict[tuple[str, int], dict]:
    """Per (layer, generator) and map (``A``, ``k``, the identity ``I``): the relative errors
    ``|f(g x) - M f(x)| / |f(x)|`` of every held-out probe (NaN where ``f(x) = 0``)."""
    errs: dict[tuple[str, int], dict[str, list[Tensor]]] = {key: {} for key in fits}
    mats = {key: {name: torch.as_tensor(f[name].T.copy(), dtype=dtype, device=dev)
                  for name in ("A", "k") if f[name] is not None}
            for key, f in fits.items()}
    for b, outs in batches:
        for n in order_names:
            z_all = outs[n]
            z = z_all[:b]
            zn = torch.linalg.vector_norm(z.reshape(b, -1), dim=1)
            den = torch.where(zn > 0, zn, torch.full_like(zn, float("nan")))
            for k in range(n_gens):
                mdl = models[(n, k)]
                y = z_all[(k + 1) * b:(k + 2) * b]
                Zt = _transformed(_rows(z, mdl), mdl)            # b x P x d
                Y = _rows(y, mdl)
                e = errs[(n, k)]
                for name, M in mats[(n, k)].items():
                    r = torch.linalg.vector_norm((Y - Zt @ M).reshape(b, -1), dim=1)
                    e.setdefault(name, []).append((r / den).cpu())
                r = torch.linalg.vector_norm((Y - Zt).reshape(b, -1), dim=1)
                e.setdefault("I", []).append((r / den).cpu())
    return errs


def _homomorphisms(rep_in: Rep, rep_out: Rep | None, order_names: list[str], fits: dict,
                   n_gens: int) -> dict[str, tuple[bool | None, list[bool | None], float | None]]:
    """Per layer: whether ``g -> k(g)`` is a homomorphism (None where K is not monomial)."""
    hom: dict[str, tuple[bool | None, list[bool | None], float | None]] = {}
    for n in order_names:
        ks = [fits[(n, k)]["k"] for k in range(n_gens)]
        if n == "output":
            v = check_homomorphism(rep_in, [rep_out.element(j)
                                            for j in rep_out.generator_indices])
            hom[n] = (bool(v.holds), [None] * n_gens, None)
        elif all(fits[(n, k)]["family"] == "monomial" for k in range(n_gens)) and \
                len({kk.shape for kk in ks}) == 1:
            ok, powers, rel = _homomorphism(rep_in, ks)
            hom[n] = (ok, powers, rel if ok else None)
        else:
            hom[n] = (None, [None] * n_gens, None)
    return hom


def _records(rep_in: Rep, order_names: list[str], shapes: dict, models: dict, fits: dict,
             errs: dict, hom: dict, src: _ProbeSource, n_gens: int) -> list[LatentActionRecord]:
    """One :class:`LatentActionRecord` per (layer, generator), layers in forward order."""

    def stat(key, name, how):
        vals = errs[key].get(name)
        if not vals:
            return None
        v = torch.cat(vals)
        return float(torch.nanmedian(v).item() if how == "median" else torch.nanmean(v).item())

    words = rep_in.words
    out = []
    for n in order_names:
        for k in range(n_gens):
            f, mdl, key = fits[(n, k)], models[(n, k)], (n, k)
            j = rep_in.generator_indices[k]
            ok, powers, rel = hom[n]
            out.append(LatentActionRecord(
                layer=n, generator=k, generator_word=words[j],
                generator_order=rep_in.element_order(j), group=rep_in.name,
                activation=f["act"], K=f["K"], latent_shape=shapes[n], model=mdl.kind,
                spatial=mdl.spatial, ls_error=stat(key, "A", "median"),
                k_error=stat(key, "k", "median"), identity_error=stat(key, "I", "median"),
                ls_error_mean=stat(key, "A", "mean"), k_error_mean=stat(key, "k", "mean"),
                identity_error_mean=stat(key, "I", "mean"), dist_to_K=f["dist"],
                homomorphism=ok, power_is_identity=powers[k], relation_error=rel,
                mean_ratio=f["mean_ratio"], n_fit=src.n_fit, n_eval=src.n_eval,
                n_fit_rows=f["n_rows"], probe=src.desc, A=f["A"], k=f["k"]))
    return out


def _model_for(name: str, shape: tuple[int, ...], in_shape: tuple[int, ...],
               op: _GridOp | None, dev, is_output: bool) -> _Model:
    """The latent model of one (layer, generator): dense, grid (per-pixel channel map) or the
    flattened fallback."""
    numbers = math.prod(shape)
    if is_output:
        if numbers > MAX_DENSE:
            raise ValueError(f"rep_out: the output has {numbers} numbers, more than MAX_DENSE = "
                             f"{MAX_DENSE} for a dense fit")
        return _Model("output", numbers)
    if len(shape) == 1:
        return _Model("dense", shape[0])
    if op is not None and len(shape) == len(in_shape) and len(shape) in (2, 3):
        src = op.src(shape[1:])
        if src is not None:
            ident = np.array_equal(src, np.arange(src.size))
            return _Model("grid", shape[0],
                          None if ident else torch.as_tensor(src, device=dev), op.name)
    if numbers <= MAX_DENSE:
        return _Model("flat", numbers, spatial=None)
    why = ("its input action is not a transform of the pixel grid times a channel map"
           if op is None else f"the grid transform {op.name!r} of the input does not carry over "
           f"to the feature map grid {shape[1:]}")
    raise ValueError(f"layers: cannot fit the latent action on {name!r} (shape {shape}): {why}, "
                     f"and its {numbers} numbers are more than MAX_DENSE = {MAX_DENSE} for a "
                     "dense fit; measure other layers")
