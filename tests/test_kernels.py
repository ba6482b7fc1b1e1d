"""Eq. (3) [BK23] (identifiable.kernels) against brute force and a direct convolution test."""

import importlib
import sys
from fractions import Fraction

import numpy as np
import pytest
import scipy.signal
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from identifiable.kernels import (
    channel_permutation,
    check_conv_equivariance,
    check_flip_kernel,
    conv2d,
    flip,
    gcnn_permutation,
    project_flip_kernel,
    random_flip_kernel,
)

SETTINGS = settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def involutions(draw, max_channels: int = 4):
    """Permutation matrices of order <= 2 (random invariant / regular mixture, relabelled)."""
    n_inv = draw(st.integers(0, max_channels))
    n_reg = draw(st.integers(0 if n_inv else 1, (max_channels - n_inv) // 2 or 1))
    P = gcnn_permutation(n_inv, n_reg)
    q = np.array(draw(st.permutations(range(P.shape[0]))))
    return P[np.ix_(q, q)]


def brute_force_pairs(psi, P0, P1):
    """Ground truth: for each (o, i) the max over (u, v) of
    |psi[o, i, u, k-1-v] - (P1 psi P0^T)[o, i, u, v]| with the matrix product written out."""
    psi = np.asarray(psi, dtype=object)
    c1, c0, kh, kw = psi.shape
    out = np.zeros((c1, c0), dtype=object)
    for o in range(c1):
        for i in range(c0):
            for u in range(kh):
                for v in range(kw):
                    rhs = sum(P1[o, a] * psi[a, b, u, v] * P0[i, b]
                              for a in range(c1) for b in range(c0))
                    out[o, i] = max(out[o, i], abs(psi[o, i, u, kw - 1 - v] - rhs))
    return out


def brute_force_constraint(psi, P0, P1):
    return max(brute_force_pairs(psi, P0, P1).ravel())


def ground_truth_conv(x, psi, padding=0):
    """Cross-correlation through scipy.signal.correlate (independent of conv2d)."""
    x = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    c1, c0 = psi.shape[:2]
    return np.array([sum(scipy.signal.correlate(x[i], psi[o, i], mode="valid")
                         for i in range(c0)) for o in range(c1)])


def act(x, P):
    """tau(P x) for one image (c, H, W), with the dense matrix P."""
    return np.einsum("ab,bhw->ahw", P, x)[..., ::-1]


@SETTINGS
@given(involutions(), involutions(), st.integers(1, 4), st.integers(1, 3),
       st.integers(0, 2**32 - 1), st.booleans())
def test_check_flip_kernel_matches_brute_force(P0, P1, kh, kw, seed, project):
    rng = np.random.default_rng(seed)
    psi = rng.integers(-3, 4, size=(P1.shape[0], P0.shape[0], kh, kw))
    if project:
        psi = project_flip_kernel(psi, P0, P1)
    v = check_flip_kernel(psi, P0, P1)
    event(v.status)
    truth = brute_force_constraint(psi, P0, P1)
    assert (v.status == "proved") == (truth == 0)
    if v.status == "refuted":
        ce = v.counterexample
        pairs = brute_force_pairs(psi, P0, P1)
        assert ce["max_abs_difference"] == pairs[ce["out"], ce["in"]] == max(pairs.ravel())
    if project:
        assert truth == 0


@SETTINGS
@given(involutions(), involutions(), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_projection_is_orthogonal_projection(P0, P1, k, seed):
    rng = np.random.default_rng(seed)
    shape = (P1.shape[0], P0.shape[0], k, k)
    psi = rng.standard_normal(shape)
    proj = project_flip_kernel(psi, P0, P1)
    assert check_flip_kernel(proj, P0, P1).status == "checked"
    assert np.allclose(project_flip_kernel(proj, P0, P1), proj)  # idempotent
    phi = project_flip_kernel(rng.standard_normal(shape), P0, P1)  # another element of C
    assert abs(np.sum((psi - proj) * phi)) < 1e-9  # orthogonal
    assert np.linalg.norm(psi - proj) <= np.linalg.norm(psi - phi) + 1e-12  # nearest
    # exact: integer kernels give exact Fractions
    ipsi = rng.integers(-3, 4, size=shape)
    iproj = project_flip_kernel(ipsi, P0, P1)
    assert all(isinstance(v, Fraction) for v in iproj.ravel())
    assert np.all(project_flip_kernel(iproj, P0, P1) == iproj)
    assert brute_force_constraint(iproj, P0, P1) == 0


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4),
       st.integers(0, 2), st.integers(0, 2**32 - 1))
def test_conv2d_matches_scipy(c0, c1, kh, kw, pad, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((c0, kh + 3, kw + 2))
    psi = rng.standard_normal((c1, c0, kh, kw))
    assert np.allclose(conv2d(x, psi, pad), ground_truth_conv(x, psi, pad))
    xi, wi = rng.integers(-3, 4, size=x.shape), rng.integers(-3, 4, size=psi.shape)
    assert np.array_equal(conv2d(xi, wi, pad), ground_truth_conv(xi, wi, pad))


@SETTINGS
@given(involutions(3), involutions(3), st.integers(1, 4), st.integers(0, 2**32 - 1),
       st.booleans(), st.booleans())
def test_conv_equivariance_against_direct_convolution(P0, P1, k, seed, project, exact):
    rng = np.random.default_rng(seed)
    shape = (P1.shape[0], P0.shape[0], k, k)
    psi = rng.integers(-3, 4, size=shape) if exact else rng.standard_normal(shape)
    if project:
        psi = project_flip_kernel(psi, P0, P1)
    pad = (k - 1) // 2 if k % 2 else 0
    size = (k + 2, k + 3)
    v = check_conv_equivariance(psi, P0, P1, image_size=size, padding=pad)
    event(v.status)
    # direct ground truth: random images through scipy's correlate
    psif = np.array(psi, dtype=float)
    err = 0.0
    for _ in range(4):
        x = rng.standard_normal((P0.shape[0],) + size)
        lhs = ground_truth_conv(act(x, P0), psif, pad)
        rhs = act(ground_truth_conv(x, psif, pad), P1)
        err = max(err, float(np.abs(lhs - rhs).max()))
    constraint = check_flip_kernel(psi, P0, P1).holds
    if v.holds:
        assert err < 1e-9 and constraint
        assert v.status == ("proved" if exact else "checked")
    else:
        assert v.status == "refuted" and err > 1e-9 and not constraint
        img = np.array(v.counterexample["image"], dtype=float)
        lhs = ground_truth_conv(act(img, P0), psif, pad)
        rhs = act(ground_truth_conv(img, psif, pad), P1)
        assert np.abs(lhs - rhs).max() > 1e-9


def test_special_cases_of_section_2_2():
    rng = np.random.default_rng(1)
    # P0 = P1 = I: horizontally symmetric filters
    psi = random_flip_kernel(np.eye(3, dtype=int), np.eye(4, dtype=int), 3, seed=rng)
    assert np.allclose(flip(psi), psi)
    # lifting: P0 = I, P1 fixed-point free: filters come in mirrored pairs
    P1 = gcnn_permutation(0, 2)
    psi = random_flip_kernel(np.eye(3, dtype=int), P1, 3, seed=rng)
    assert np.allclose(flip(psi[0]), psi[1]) and np.allclose(flip(psi[2]), psi[3])
    # regular: both fixed-point free
    P0 = gcnn_permutation(0, 1)
    psi = random_flip_kernel(P0, P1, 3, seed=rng, exact=True)
    assert check_flip_kernel(psi, P0, P1).status == "proved"
    assert check_conv_equivariance(psi, P0, P1).status == "proved"
    assert channel_permutation([1, 0, 2]).tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 1]]
    # symmetric padding keeps even kernels equivariant; an asymmetric filter is not
    assert check_conv_equivariance(np.array([[[[1, 1], [3, 3]]]]), [0], [0],
                                   padding=1).status == "proved"
    assert check_conv_equivariance(np.array([[[[1, 2], [3, 4]]]]), [0], [0],
                                   padding=1).status == "refuted"


def test_float_tolerance_and_index_permutations():
    psi = random_flip_kernel([1, 0], [0], 3, seed=0)
    v = check_flip_kernel(psi + 1e-12, [1, 0], [0])
    assert v.status == "checked" and v.tol is not None
    bumped = psi.copy()
    bumped[0, 0, 0, 0] += 1e-3
    assert check_flip_kernel(bumped, [1, 0], [0]).status == "refuted"
    assert check_flip_kernel(bumped, [1, 0], [0], tol=1e-2).status == "checked"


def test_bad_input():
    psi = np.zeros((2, 3, 3, 3))
    with pytest.raises(ValueError, match="P0.*order > 2"):
        check_flip_kernel(psi, [1, 2, 0], [1, 0])
    with pytest.raises(ValueError, match="P1.*order > 2"):
        check_flip_kernel(np.zeros((3, 1, 3, 3)), [0], np.eye(3, dtype=int)[[1, 2, 0]])
    with pytest.raises(ValueError, match="perm.*order > 2"):
        channel_permutation([1, 2, 0])
    with pytest.raises(ValueError, match="P0.*permutes 2 channels.*3"):
        check_flip_kernel(psi, [1, 0], [1, 0])
    with pytest.raises(ValueError, match="P1.*not a permutation matrix"):
        check_flip_kernel(psi, [0, 1, 2], [[1, 1], [0, 1]])
    with pytest.raises(ValueError, match="psi.*shape"):
        check_flip_kernel(np.zeros((2, 3, 3)), [0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="psi.*NaN"):
        check_flip_kernel(np.full((1, 1, 3, 3), np.nan), [0], [0])
    with pytest.raises(ValueError, match="n_regular"):
        gcnn_permutation(1, -1)
    with pytest.raises(ValueError, match="padding"):
        conv2d(np.zeros((1, 4, 4)), np.zeros((1, 1, 3, 3)), padding=-1)
    with pytest.raises(ValueError, match="psi"):
        conv2d(np.zeros((2, 4, 4)), np.zeros((1, 1, 3, 3)))


def test_core_does_not_import_torch():
    mod = importlib.reload(sys.modules["identifiable.kernels"])
    assert "torch" not in vars(mod)
