"""identifiable: executable theory of identifiable and equivariant neural networks.

The symbolic core (this package minus :mod:`identifiable.torch` and the experiments) imports
without torch. Public names follow DESIGN.md. The layers of the package, each using only those
before it: ``verdict`` <- ``numbers`` / ``zero`` <- ``groups``, ``latent_groups`` <-
``activations`` <- ``intertwining``, ``diagrams`` <- ``models`` <- ``theory`` <- the [BK23]
results (``relu``, ``kernels``, ``quotients``) <- ``claims``, ``cli``; ``torch`` and
``experiments`` use the core, never the reverse. The modules ``attention``, ``equivariance``,
``identifiability``, ``submodels``, ``intertwiners`` and ``linalg`` are compatibility paths to
their new homes.
"""

from identifiable import (
    activations,
    attention,
    equivariance,
    groups,
    identifiability,
    intertwiners,
    kernels,
    latent_groups,
    models,
    numbers,
    quotients,
    relu,
    submodels,
    theory,
    zero,
)
from identifiable.intertwining import check_affine_intertwiner, check_intertwiner
from identifiable.kernels import check_flip_kernel, project_flip_kernel
from identifiable.models import MLP, Layer, Model, Theta
from identifiable.models.attention import AttentionModel, HeadAction, token_permutations
from identifiable.models.residual import ResidualMLP
from identifiable.quotients import prop_d_4
from identifiable.relu import prop_2_3, prop_b_1, prop_d_1, relu_sum_identity
from identifiable.theory.align import align
from identifiable.theory.attention import (
    align_attention,
    equivariant_attention,
    is_equivariant_attention,
)
from identifiable.theory.dimension import functional_dimension
from identifiable.theory.equivariance import (
    check_adjunction,
    check_layer_equivariance,
    intertwiner_space,
    is_equivariant,
    random_equivariant_params,
)
from identifiable.theory.equivariance_error import EquivarianceError, equivariance_error
from identifiable.theory.identifiability import is_identifiable, weakly_identifiable
from identifiable.theory.latent_actions import latent_actions
from identifiable.theory.same_function import same_function
from identifiable.theory.submodels import Submodel, reduce
from identifiable.verdict import UndecidedError, Verdict

#: the attention model of eq. (10) [SMBK26] (DESIGN.md's name)
Attention = AttentionModel


def __getattr__(name: str) -> object:
    """``identifiable.from_torch``, imported on first use (torch stays out of ``import
    identifiable``; not in ``__all__``, so ``from identifiable import *`` needs no torch)."""
    if name == "from_torch":
        try:
            from identifiable.torch.bridge import from_torch
        except ImportError as exc:
            raise ImportError(f"identifiable.from_torch needs torch ({exc})") from exc
        return from_torch
    raise AttributeError(f"module 'identifiable' has no attribute {name!r}")


__version__ = "0.1.0"
__all__ = [
    "Verdict",
    "UndecidedError",
    "activations",
    "attention",
    "equivariance",
    "groups",
    "identifiability",
    "intertwiners",
    "latent_groups",
    "numbers",
    "theory",
    "zero",
    "kernels",
    "models",
    "quotients",
    "relu",
    "submodels",
    "check_intertwiner",
    "check_affine_intertwiner",
    "Layer",
    "Model",
    "MLP",
    "Theta",
    "ResidualMLP",
    "Attention",
    "AttentionModel",
    "HeadAction",
    "Submodel",
    "reduce",
    "is_identifiable",
    "align",
    "same_function",
    "weakly_identifiable",
    "functional_dimension",
    "is_equivariant",
    "equivariance_error",
    "EquivarianceError",
    "check_layer_equivariance",
    "check_adjunction",
    "latent_actions",
    "intertwiner_space",
    "random_equivariant_params",
    "align_attention",
    "is_equivariant_attention",
    "equivariant_attention",
    "token_permutations",
    "prop_2_3",
    "prop_b_1",
    "prop_d_1",
    "prop_d_4",
    "relu_sum_identity",
    "check_flip_kernel",
    "project_flip_kernel",
    "__version__",
]
