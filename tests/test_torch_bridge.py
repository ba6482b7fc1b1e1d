"""The torch bridge (identifiable.torch.bridge): from_torch / to_torch for the MLP of eq. (7) and
the attention model of eq. (10) [SMBK26].

Ground truth throughout is the library model's own float64 forward (``model.forward``) against
the torch module's output on the same random inputs."""

import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import identifiable  # noqa: E402
from identifiable import MLP, AttentionModel, activations  # noqa: E402
from identifiable import strategies as ids  # noqa: E402
from identifiable.torch import bridge  # noqa: E402
from identifiable.torch.bridge import (  # noqa: E402
    Eq10Attention,
    Power,
    activation_from_torch,
    activation_to_torch,
    from_torch,
    to_torch,
)

#: every activation module the bridge maps, with the library name it maps to
ACT_MODULES = [
    (nn.Tanh(), "tanh"), (nn.ReLU(), "relu"), (nn.LeakyReLU(0.2), "leaky_relu:1/5"),
    (nn.LeakyReLU(), "leaky_relu:1/100"), (nn.GELU(), "gelu"), (nn.Sigmoid(), "sigmoid"),
    (nn.Softplus(), "softplus"), (nn.Softplus(beta=2.0), "softplus:2"), (nn.SiLU(), "silu"),
    (Power(2), "power:2"), (Power(3), "power:3"), (nn.LeakyReLU(0.0), "relu"),
]
#: library activations to_torch maps (the round trip model -> torch -> model)
LIB_ACTS = ("tanh", "relu", "leaky_relu:1/10", "gelu", "sigmoid", "softplus", "softplus:1/2",
            "silu", "power:2", "power:3", "identity")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def tol(dtype, y):
    """Dtype-appropriate absolute tolerance for outputs of size ``y``."""
    eps = float(torch.finfo(dtype).eps)
    return 1e3 * eps * (1.0 + float(np.max(np.abs(y), initial=0.0)))


def torch_out(net, x, dtype):
    with torch.no_grad():
        return net(torch.as_tensor(x, dtype=dtype)).double().numpy()


def assert_same_function(model, theta, net, dtype, n_in, seed=0, shape=None):
    x = np.random.default_rng(seed).standard_normal(shape or (16, n_in))
    x = torch.as_tensor(x, dtype=dtype).double().numpy()  # inputs representable in dtype
    ref = model.forward(x, theta)
    got = torch_out(net, x, dtype)
    assert got.shape == ref.shape
    err = float(np.max(np.abs(got - ref)))
    assert err <= tol(dtype, ref), (err, tol(dtype, ref))


# ---------------------------------------------------------------------------------- MLP
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(ids.mlps_with_params(activations=LIB_ACTS, exact=False), st.sampled_from(list(DTYPES)))
def test_model_torch_model_round_trip(mp, dtype_name):
    model, theta = mp
    dtype = DTYPES[dtype_name]
    net = to_torch(model, theta, dtype)
    assert all(p.dtype == dtype for p in net.parameters())
    model2, theta2 = from_torch(net)
    assert model2.widths == model.widths and model2.bias == model.bias
    assert [a.expr for a in model2.activations] == [a.expr for a in model.activations]
    if dtype == torch.float64:
        assert theta2.equals(theta, tol=0.0)  # exactly the same numbers
    else:
        rounded = model.params([np.float32(W).astype(float) for W in theta.weights],
                               [np.float32(b).astype(float) for b in theta.biases]
                               if model.bias else None)
        assert theta2.equals(rounded, tol=0.0)  # float32 rounding, nothing else
    assert_same_function(model, theta, net, dtype, model.widths[0])


@st.composite
def torch_mlps(draw):
    """A random torch Sequential of Linear layers with supported activations between them (or
    none, or no-ops), and a seed for its weights."""
    widths = draw(st.lists(st.integers(1, 6), min_size=2, max_size=5))
    bias = draw(st.booleans())
    mods = []
    for i in range(len(widths) - 1):
        mods.append(nn.Linear(widths[i], widths[i + 1], bias=bias))
        if i < len(widths) - 2:
            k = draw(st.integers(-1, len(ACT_MODULES) - 1))  # -1: no activation (identity)
            if k >= 0:
                mods.append(type(ACT_MODULES[k][0])(**_kwargs(ACT_MODULES[k][0])))
            if draw(st.booleans()):
                mods.append(draw(st.sampled_from([nn.Identity(), nn.Dropout(0.3)])))
    return mods, draw(st.integers(0, 2**31 - 1))


def _kwargs(m):
    if isinstance(m, nn.LeakyReLU):
        return {"negative_slope": m.negative_slope}
    if isinstance(m, nn.Softplus):
        return {"beta": m.beta}
    if isinstance(m, Power):
        return {"m": m.m}
    return {}


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(torch_mlps(), st.sampled_from(list(DTYPES)))
def test_torch_model_torch_same_function(drawn, dtype_name):
    mods, seed = drawn
    dtype = DTYPES[dtype_name]
    torch.manual_seed(seed)
    net = nn.Sequential(*mods).to(dtype).eval()
    model, theta = from_torch(net)
    assert theta.kind == "float"
    assert_same_function(model, theta, net, dtype, model.widths[0], seed=seed % 1000)
    back = to_torch(model, theta, dtype)
    assert_same_function(model, theta, back, dtype, model.widths[0], seed=seed % 1000 + 1)
    x = torch.randn(8, model.widths[0], dtype=dtype)
    with torch.no_grad():
        torch.testing.assert_close(back(x), net(x))


@pytest.mark.parametrize("module,name", ACT_MODULES, ids=[n for _, n in ACT_MODULES])
def test_every_activation(module, name):
    assert activation_from_torch(module) == name
    act = activations.get(name)
    # the torch module and the library activation are the same function (float64)
    grid = torch.linspace(-8, 8, 401, dtype=torch.float64)
    with torch.no_grad():
        np.testing.assert_allclose(module(grid).numpy(), act(grid.numpy()), rtol=1e-12,
                                   atol=1e-12)
    back = activation_to_torch(act)
    assert activation_from_torch(back) == name
    # in a network
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), module, nn.Linear(5, 2)).double()
    model, theta = from_torch(net)
    assert [a.name for a in model.activations] == [name]
    assert_same_function(model, theta, net, torch.float64, 3)
    assert_same_function(model, theta, model.to_torch(theta, torch.float32), torch.float32, 3)


def test_activation_helpers_reject_others():
    assert activation_from_torch(nn.Identity()) == "identity"
    assert activation_from_torch(nn.LeakyReLU(1.0)) == "identity"
    for m in (nn.ELU(), nn.Hardtanh(), nn.Linear(2, 2)):
        with pytest.raises(ValueError, match=type(m).__name__):
            activation_from_torch(m)
    x = sp.Symbol("x")
    with pytest.raises(ValueError, match="not a built-in"):
        activation_to_torch(activations.from_sympy(sp.sin(x), x, "sin"))
    with pytest.raises(ValueError, match="not a built-in"):  # a name that lies
        activation_to_torch(activations.from_sympy(sp.sin(x), x, "relu"))


def test_silu_model_has_derived_permutation_group():
    net = nn.Sequential(nn.Linear(2, 3), nn.SiLU(), nn.Linear(3, 1))
    model, _ = from_torch(net)
    K = model.latent_group(1)
    assert K.family == "monomial" and K.scalings.kind == "one"  # S_3: permutations only


class FunctionalNet(nn.Module):
    """A custom forward with functional calls (traced by torch.fx)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 6)
        self.b = nn.Linear(6, 5)
        self.inner = nn.Sequential(nn.Linear(5, 5), nn.GELU())
        self.c = nn.Linear(5, 3)
        self.d = nn.Linear(3, 3)
        self.e = nn.Linear(3, 2)
        self.w = nn.Parameter(torch.randn(2, 2))
        self.bias = nn.Parameter(torch.randn(2))

    def forward(self, x):
        x = F.relu(self.a(x))
        x = torch.tanh(self.b(x))
        x = self.inner(x)
        x = F.leaky_relu(self.c(x), 0.25)
        x = F.dropout(x, 0.5, training=self.training)
        x = self.d(x).sigmoid()
        x = F.softplus(self.e(x), beta=2.0)
        return F.linear(x, self.w, self.bias)


def test_fx_traced_custom_module():
    torch.manual_seed(1)
    net = FunctionalNet().double().eval()
    model, theta = identifiable.from_torch(net)  # the lazy top-level name
    assert model.widths == [4, 6, 5, 5, 3, 3, 2, 2]
    assert [a.name for a in model.activations] == [
        "relu", "tanh", "gelu", "leaky_relu:1/4", "sigmoid", "softplus:2"]
    assert_same_function(model, theta, net, torch.float64, 4)
    assert_same_function(model, theta, to_torch(model, theta, torch.float32), torch.float32, 4)


class MethodNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 4, bias=False)
        self.b = nn.Linear(4, 4, bias=False)
        self.c = nn.Linear(4, 3, bias=False)
        self.d = nn.Linear(3, 2, bias=False)

    def forward(self, x):
        x = self.a(x).relu()
        x = self.b(x) ** 2
        x = F.silu(self.c(x)) ** 1  # ** 1 is the identity: no second activation
        return self.d(x)


def test_fx_methods_powers_and_no_bias():
    torch.manual_seed(2)
    net = MethodNet().double()
    model, theta = from_torch(net)
    assert not model.bias
    assert [a.name for a in model.activations] == ["relu", "power:2", "silu"]
    assert_same_function(model, theta, net, torch.float64, 3)


def test_exact_parameters_are_the_binary_values():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    model, theta = from_torch(net, exact=True)
    assert theta.kind == "exact"
    W = net[0].weight.detach().double().numpy()
    assert theta.weights[0][1, 0] == sp.Rational(float(W[1, 0]))  # exact, not rounded
    _, theta_f = from_torch(net)
    assert theta.numeric.equals(theta_f, tol=0.0)


def test_parameters_are_copies():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).double()
    model, theta = from_torch(net)
    before = theta.weights[0].copy()
    with torch.no_grad():
        net[0].weight.add_(1.0)
    np.testing.assert_array_equal(theta.weights[0], before)
    back = to_torch(model, theta, torch.float64)
    with torch.no_grad():
        back[0].weight.add_(1.0)
    np.testing.assert_array_equal(theta.weights[0], before)


def test_no_reference_cycle_keeps_parameters_alive():
    # a float Theta used by to_torch / forward is freed at once (no self-cycle through
    # Theta.numeric, which would hold a large theta until the cyclic collector runs)
    import gc
    import weakref

    model = MLP([3, 4, 2], "relu")
    was = gc.isenabled()
    gc.disable()
    try:
        theta = model.random_params(0)
        model.forward(np.ones(3), theta)
        net = to_torch(model, theta)
        _, theta2 = from_torch(net)
        refs = [weakref.ref(theta), weakref.ref(theta2), weakref.ref(net)]
        del theta, theta2, net
        assert [r() for r in refs] == [None, None, None]
    finally:
        if was:
            gc.enable()


# ---------------------------------------------------------------------------------- errors
class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 3)
        self.b = nn.Linear(3, 2)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)) + x)


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 3)

    def forward(self, x):
        if x.sum() > 0:
            return self.a(x)
        return x


@pytest.mark.parametrize("net,match", [
    (nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.ReLU(), nn.Conv2d(1, 1, 1)),
                   nn.Linear(4, 2)), r"'1\.1' \(Conv2d\): not supported.*Linear"),
    (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Tanh()),
     r"'3' \(Tanh\): an activation after the last Linear.*affine"),
    (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Tanh(), nn.Linear(4, 2)),
     r"'1' \(ReLU\) and '2' \(Tanh\): two activations in a row"),
    (nn.Sequential(nn.Tanh(), nn.Linear(3, 4)), r"'0' \(Tanh\): an activation before"),
    (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2, bias=False)),
     r"mixed biases: '0' \(Linear\) have biases, '2' \(Linear\) do not"),
    (nn.Sequential(nn.Linear(3, 4), nn.GELU(approximate="tanh"), nn.Linear(4, 2)),
     r"'1' \(GELU\): GELU\(approximate='tanh'\)"),
    (nn.Sequential(nn.Linear(3, 4), nn.Softplus(threshold=2.0), nn.Linear(4, 2)),
     r"'1' \(Softplus\): Softplus\(threshold=2.0\)"),
    (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(5, 2)),
     r"'2' \(Linear\): takes 5 inputs, but '0' \(Linear\) gives 4"),
    (nn.Sequential(nn.Linear(3, 4), nn.ELU(), nn.Linear(4, 2)), r"'1' \(ELU\): not supported"),
    (Residual(), r"Residual.*not a chain"),
    (DataDependent(), r"DataDependent.*torch\.fx cannot trace"),
    (nn.Sequential(nn.Linear(4, 4), nn.MultiheadAttention(4, 1, bias=False, batch_first=True)),
     r"'1' \(MultiheadAttention\): an nn\.Sequential cannot call it"),
    (nn.Sequential(nn.Identity()), "no Linear layer"),
])
def test_clear_errors_name_the_module(net, match):
    with pytest.raises(ValueError, match=match):
        from_torch(net)


def test_error_names_traced_call_and_nan():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)

        def forward(self, x):
            return self.a(torch.abs(x))

    with pytest.raises(ValueError, match=r"the call 'abs\w*' \(call_function abs\)"):
        from_torch(Bad())
    net = nn.Sequential(nn.Linear(2, 2))
    with torch.no_grad():
        net[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"'0' \(Linear\)\.weight: has NaN"):
        from_torch(net)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        from_torch("not a module")
    model = MLP([2, 2], "relu")
    with pytest.raises(TypeError, match="dtype"):
        to_torch(model, model.random_params(0), torch.int64)


# ---------------------------------------------------------------------------------- attention
@settings(max_examples=15, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 4), st.lists(st.integers(1, 3), min_size=2, max_size=4),
       st.data(), st.sampled_from(list(DTYPES)))
def test_attention_round_trip(n, dims, data, dtype_name):
    L = len(dims) - 1
    heads = data.draw(st.lists(st.integers(1, 3), min_size=L - 1, max_size=L - 1))
    pos = data.draw(st.lists(st.booleans(), min_size=L, max_size=L))
    model = AttentionModel(n, dims, heads=heads, positional=pos)
    theta = model.random_params(data.draw(st.integers(0, 1000)))
    dtype = DTYPES[dtype_name]
    net = model.to_torch(theta, dtype)
    assert all(isinstance(m, Eq10Attention) for m in net)
    model2, theta2 = from_torch(net)
    assert (model2.n_tokens, model2.dims, model2.heads, model2.positional, model2.inner) == (
        model.n_tokens, model.dims, model.heads, model.positional, model.inner)
    if dtype == torch.float64:
        assert theta2.equals(theta, tol=0.0)
    else:
        assert theta2.max_abs_diff(theta) <= 1e-6 * max(1.0, np.max(np.abs(theta.flat())))
    assert_same_function(model, theta, net, dtype, None, shape=(6, n, dims[0]))


class MHAChain(nn.Module):
    def __init__(self, E, heads, eq10=None):
        super().__init__()
        self.layers = nn.ModuleList([nn.MultiheadAttention(E, h, bias=False, batch_first=True)
                                     for h in heads])
        self.eq10 = eq10

    def forward(self, x):
        for layer in self.layers:
            x, _ = layer(x, x, x)
        if self.eq10 is not None:
            x = self.eq10(x)
        return x


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("heads", [[1], [2, 1], [3, 2, 1], [6, 1]])
def test_mha_chain_maps_to_eq10(heads, dtype_name):
    dtype = DTYPES[dtype_name]
    torch.manual_seed(len(heads))
    net = MHAChain(6, heads).to(dtype).eval()
    model, theta = from_torch(net, n_tokens=5)
    assert model.heads == [1] + heads[:-1] + [1]
    assert model.dims == [6] + [6 // h for h in heads[:-1]] + [6]
    assert_same_function(model, theta, net, dtype, None, shape=(4, 5, 6))
    assert_same_function(model, theta, model.to_torch(theta, dtype), dtype, None,
                         shape=(4, 5, 6))


def test_mha_then_eq10_and_bare_mha():
    torch.manual_seed(7)
    eq = Eq10Attention(5, 6, 1, 3, 1, 4, positional=True, dtype=torch.float64)
    net = MHAChain(6, [3], eq10=eq).double().eval()
    model, theta = from_torch(net)  # n from the Eq10Attention layer
    assert model.n_tokens == 5 and model.heads == [1, 3, 1] and model.dims == [6, 2, 3]
    assert_same_function(model, theta, net, torch.float64, None, shape=(4, 5, 6))
    mha = nn.MultiheadAttention(4, 1, bias=False, batch_first=True).double()
    model, theta = from_torch(mha, n_tokens=3)
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    with torch.no_grad():
        ref = mha(x, x, x)[0].numpy()
    np.testing.assert_allclose(model.forward(x.numpy(), theta), ref, rtol=1e-12, atol=1e-12)


class CrossAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(4, 1, bias=False, batch_first=True)
        self.k = nn.Linear(4, 4)

    def forward(self, x):
        return self.mha(x, self.k(x), x)[0]


class MaskedAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(4, 1, bias=False, batch_first=True)

    def forward(self, x):
        return self.mha(x, x, x, attn_mask=torch.ones(3, 3, dtype=torch.bool))[0]


@pytest.mark.parametrize("net,match", [
    (nn.MultiheadAttention(4, 2, bias=False, batch_first=True),
     r"the module \(MultiheadAttention\): the last MultiheadAttention has 2 heads"),
    (nn.MultiheadAttention(4, 1, batch_first=True), r"bias=True"),
    (nn.MultiheadAttention(4, 1, bias=False), r"batch_first=False"),
    (nn.MultiheadAttention(4, 1, bias=False, batch_first=True, add_bias_kv=True),
     "add_bias_kv"),
    (nn.MultiheadAttention(4, 1, bias=False, batch_first=True, add_zero_attn=True),
     "add_zero_attn"),
    (nn.MultiheadAttention(4, 1, bias=False, batch_first=True, kdim=2, vdim=2),
     "kdim=2, vdim=2"),
    (CrossAttention(), r"not a chain|only self-attention"),
    (MaskedAttention(), r"'mha' \(MultiheadAttention\).*masked attention"),
    (nn.Sequential(Eq10Attention(3, 2, 1, 2, 1, 2), nn.Linear(2, 2)), "cannot be mixed"),
])
def test_unsupported_attention_errors(net, match):
    with pytest.raises(ValueError, match=match):
        from_torch(net, n_tokens=3)


def test_attention_needs_n_tokens_and_float():
    mha = nn.MultiheadAttention(4, 1, bias=False, batch_first=True)
    with pytest.raises(ValueError, match="pass n_tokens="):
        from_torch(mha)
    with pytest.raises(ValueError, match="float64 only"):
        from_torch(mha, n_tokens=3, exact=True)
    seq = nn.Sequential(Eq10Attention(3, 2, 1, 2, 1, 2))
    with pytest.raises(ValueError, match="disagree"):
        from_torch(seq, n_tokens=4)


# ---------------------------------------------------------------------------------- imports
def test_core_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import identifiable\n"
            "from identifiable import *\n"
            "from identifiable.models import mlp, attention\n"
            "assert 'torch' not in [m.split('.')[0] for m in sys.modules if sys.modules[m]]\n"
            "try:\n"
            "    identifiable.from_torch\n"
            "except ImportError as e:\n"
            "    assert 'needs torch' in str(e)\n"
            "else:\n"
            "    raise SystemExit('from_torch without torch')\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_lazy_top_level_name():
    assert identifiable.from_torch is bridge.from_torch
    assert "from_torch" not in identifiable.__all__  # star-import stays torch-free
    with pytest.raises(AttributeError):
        identifiable.no_such_name  # noqa: B018
