"""identifiable: executable theory of identifiable and equivariant neural networks.

The symbolic core (this package minus :mod:`identifiable.torch` and the experiments) imports
without torch. Public names follow DESIGN.md.
"""

from identifiable import activations, groups, intertwiners, kernels, quotients, relu
from identifiable.intertwining import check_affine_intertwiner, check_intertwiner
from identifiable.kernels import check_flip_kernel, project_flip_kernel
from identifiable.quotients import prop_d_4
from identifiable.relu import prop_2_3, prop_b_1, prop_d_1, relu_sum_identity
from identifiable.verdict import UndecidedError, Verdict

__version__ = "0.1.0"
__all__ = [
    "Verdict",
    "UndecidedError",
    "activations",
    "groups",
    "intertwiners",
    "kernels",
    "quotients",
    "relu",
    "prop_2_3",
    "prop_b_1",
    "prop_d_1",
    "prop_d_4",
    "relu_sum_identity",
    "check_flip_kernel",
    "project_flip_kernel",
    "check_intertwiner",
    "check_affine_intertwiner",
    "__version__",
]
