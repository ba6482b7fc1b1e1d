"""Prop D.4 [BK23] on finite sets (identifiable.quotients) against brute force."""

import functools
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from identifiable import groups
from identifiable.quotients import QuotientAction, finite_action, prop_d_4

SETTINGS = settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
GROUPS = [groups.cyclic(2), groups.cyclic(3), groups.cyclic(4), groups.dihedral(3),
          groups.symmetric(3)]


def point_perms(G):
    return [groups.permutation_of(M) for M in G.elements]


def act_pair(p, t):
    return (int(p[t[0]]), int(p[t[1]]))


def brute_force_equivariant(G, X, phi, psi, act_x, act_z):
    """Ground truth: psi(phi(g x)) == g psi(phi(x)) for every element g and x."""
    return all(psi[phi[act_x(p, x)]] == act_z(p, psi[phi[x]])
               for p in point_perms(G) for x in X)


def brute_force_action_axioms(G, action):
    """Ground truth for Definition D.2 on an action given as {word: permutation list}."""
    words = G.words
    perms = [action[w] for w in words]
    n = len(perms[0])
    if perms[0] != list(range(n)):
        return False
    # element index of a product, from the matrices themselves
    mats = G.elements
    index = {tuple(np.asarray(M).ravel().tolist()): j for j, M in enumerate(mats)}
    for g, h in itertools.product(range(G.order), repeat=2):
        gh = index[tuple((np.asarray(mats[g]) @ np.asarray(mats[h])).ravel().tolist())]
        if any(perms[gh][c] != perms[g][perms[h][c]] for c in range(n)):
            return False
    return True


@st.composite
def composites(draw):
    """(G, X, Y, Z, phi, psi, act_z): X = ordered pairs of points, Z = points or unordered
    pairs; phi random or a refinement of an equivariant map."""
    G = draw(st.sampled_from(GROUPS))
    n = G.dim
    X = [(i, j) for i in range(n) for j in range(n)]
    if draw(st.booleans()):
        Z = list(range(n))
        h = {x: x[0] for x in X}

        def act_z(p, z):
            return int(p[z])
    else:
        Z = sorted({tuple(sorted(x)) for x in X})
        h = {x: tuple(sorted(x)) for x in X}

        def act_z(p, z):
            return tuple(sorted(int(p[i]) for i in z))
    k = draw(st.integers(1, len(X)))
    Y = [f"y{i}" for i in range(k + 2)]
    if draw(st.booleans()):  # phi refines h's fibres: psi o phi = h is equivariant
        phi, psi, used = {}, {}, 0
        for z in Z:
            fibre = [x for x in X if h[x] == z]
            labels = draw(st.lists(st.integers(0, 1), min_size=len(fibre), max_size=len(fibre)))
            for lab in (0, 1):
                members = [x for x, lx in zip(fibre, labels) if lx == lab]
                if members:
                    y = f"y{used}"
                    used += 1
                    psi[y] = z
                    phi.update({x: y for x in members})
        Y = [f"y{i}" for i in range(used + 1)]
        psi[Y[-1]] = Z[0]  # a point of Y outside phi(X)
    else:  # arbitrary maps
        phi = {x: draw(st.sampled_from(Y)) for x in X}
        psi = {y: draw(st.sampled_from(Z)) for y in Y}
    return G, X, Y, Z, phi, psi, act_z


@SETTINGS
@given(composites())
def test_prop_d_4_against_brute_force(data):
    G, X, Y, Z, phi, psi, act_z = data
    gens = [groups.permutation_of(M) for M in G.generators]
    act_X = [functools.partial(act_pair, p) for p in gens]
    act_Z = [functools.partial(act_z, p) for p in gens]
    v = prop_d_4(X, Y, Z, phi, psi, act_X, act_Z, group=G)
    event(v.status)
    truth = brute_force_equivariant(G, X, phi, psi, act_pair, act_z)
    assert v.holds == truth
    if v.status == "refuted":
        ce = v.counterexample
        p = point_perms(G)[G.words.index(ce["g"])]
        x = ce["x"]
        assert psi[phi[act_pair(p, x)]] != act_z(p, psi[phi[x]])
        return
    w = v.witness
    assert isinstance(w, QuotientAction)
    assert brute_force_action_axioms(G, w.action)
    # classes are exactly the non-empty fibres of psi over phi(X)
    image = {phi[x] for x in X}
    fibres = {}
    for y in sorted(image):
        fibres.setdefault(psi[y], set()).add(y)
    assert sorted(map(sorted, fibres.values())) == sorted(sorted(c) for c in w.classes)
    cls = {y: c for c, members in enumerate(w.classes) for y in members}
    for p, word in zip(point_perms(G), G.words):
        for i, x in enumerate(X):
            assert w.phi_prime[i] == cls[phi[x]]
            assert cls[phi[act_pair(p, x)]] == w.act(word, cls[phi[x]])  # phi' equivariant
        for c in range(len(w.classes)):
            assert w.psi_prime[w.act(word, c)] == act_z(p, w.psi_prime[c])  # psi' equivariant


def test_rep_acting_on_vectors_and_bijective_psi():
    swap = groups.Rep([[[0, 1], [1, 0]]])
    X = [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)]
    # |x1 - x2| through Y = R^2: phi = W1 x, psi = W2 ReLU
    Y = sorted({(a - b, b - a) for a, b in X})
    v = prop_d_4(X, Y, [0, 1, 2], lambda x: (x[0] - x[1], x[1] - x[0]),
                 lambda y: max(0, y[0]) + max(0, y[1]), swap, [[0, 1, 2]])
    assert v.status == "proved" and v.witness.Y_action is None
    assert len(v.witness.classes) == 3 and v.witness.action["s0"] == [0, 1, 2]
    # a bijective psi gives the action on all of Y (part 1 / Lemma D.3)
    v = prop_d_4(X, Y, Y, lambda x: (x[0] - x[1], x[1] - x[0]), lambda y: y, swap,
                 [lambda y: (y[1], y[0])])
    ya = v.witness.Y_action
    assert all(Y[ya["s0"][i]] == (y[1], y[0]) for i, y in enumerate(Y))
    # psi o phi not equivariant
    v = prop_d_4(X, Y, [0, 1, 2], lambda x: (x[0] - x[1], x[1] - x[0]),
                 lambda y: max(0, y[0]), swap, [[0, 1, 2]])
    assert v.status == "refuted"
    # the action on Z as a Rep on vectors too, and dict-valued maps
    Zv = [(a, b) for a in (-2, -1, 0, 1, 2) for b in (-2, -1, 0, 1, 2)]
    phi = {x: x for x in X}
    v = prop_d_4(X, X, Zv, phi, {x: (x[0] + x[1], x[0] + x[1]) for x in X}, swap, swap)
    assert v.status == "proved"


def test_finite_action():
    G = groups.cyclic(4)
    perms = finite_action(G, [[1, 2, 3, 0]], list("abcd"))
    assert [p.tolist() for p in perms][1] == [1, 2, 3, 0]
    with pytest.raises(ValueError, match="act.*not define an action"):
        finite_action(G, [[1, 2, 0, 3]], list("abcd"), name="act")


def test_bad_input():
    swap = groups.Rep([[[0, 1], [1, 0]]])
    X = [(0, 1), (1, 0)]
    with pytest.raises(ValueError, match="phi"):
        prop_d_4(X, ["a"], ["z"], lambda x: "b", lambda y: "z", swap, [[0]])
    with pytest.raises(ValueError, match="psi"):
        prop_d_4(X, ["a"], ["z"], lambda x: "a", {"b": "z"}, swap, [[0]])
    with pytest.raises(ValueError, match="act_Z.*bijection"):
        prop_d_4(X, ["a"], ["z", "w"], lambda x: "a", lambda y: "z", swap, [[0, 0]])
    with pytest.raises(ValueError, match="act_Z.*one action per generator"):
        prop_d_4(X, ["a"], ["z"], lambda x: "a", lambda y: "z", swap, [[0], [0]])
    with pytest.raises(ValueError, match="X.*twice"):
        prop_d_4([(0, 1), (0, 1)], ["a"], ["z"], lambda x: "a", lambda y: "z", swap, [[0]])
    with pytest.raises(ValueError, match="act_X.*R\\^2"):
        prop_d_4([(0, 1, 2)], ["a"], ["z"], lambda x: "a", lambda y: "z", swap, [[0]])
    C4 = groups.cyclic(4)
    with pytest.raises(ValueError, match="act_X.*not define an action"):
        prop_d_4([0, 1, 2], ["a"], ["z"], lambda x: "a", lambda y: "z", [[1, 2, 0]], [[0]],
                 group=C4)
    with pytest.raises(TypeError, match="group"):
        prop_d_4([0], ["a"], ["z"], lambda x: "a", lambda y: "z", [[0]], [[0]], group=[[1]])
