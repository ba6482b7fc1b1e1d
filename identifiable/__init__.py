"""identifiable: executable theory of identifiable and equivariant neural networks.

The symbolic core (this package minus :mod:`identifiable.torch` and the experiments) imports
without torch. Public names follow DESIGN.md; ``idf.identifiability.identifiable`` decides
(strong) identifiability, while ``idf.identifiable`` is this package.
"""

from identifiable import (
    activations,
    attention,
    equivariance,
    groups,
    identifiability,
    intertwiners,
    kernels,
    models,
    quotients,
    relu,
    submodels,
)
from identifiable.identifiability import (
    align,
    functional_dimension,
    is_identifiable,
    same_function,
    weakly_identifiable,
)
from identifiable.intertwining import check_affine_intertwiner, check_intertwiner
from identifiable.kernels import check_flip_kernel, project_flip_kernel
from identifiable.models import MLP, Layer, Model, Theta
from identifiable.models.attention import AttentionModel, HeadAction, token_permutations
from identifiable.quotients import prop_d_4
from identifiable.relu import prop_2_3, prop_b_1, prop_d_1, relu_sum_identity
from identifiable.theory.attention import (
    align_attention,
    equivariant_attention,
    is_equivariant_attention,
)
from identifiable.theory.equivariance import (
    check_adjunction,
    check_layer_equivariance,
    intertwiner_space,
    is_equivariant,
    random_equivariant_params,
)
from identifiable.theory.latent_actions import latent_actions
from identifiable.theory.submodels import Submodel, reduce
from identifiable.verdict import UndecidedError, Verdict

#: the attention model of eq. (10) [SMBK26] (DESIGN.md's name)
Attention = AttentionModel

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
