"""identifiable: executable theory of identifiable and equivariant neural networks.

The symbolic core (this package minus :mod:`identifiable.torch` and the experiments) imports
without torch. Public names follow DESIGN.md.
"""

from identifiable import activations, intertwiners
from identifiable.intertwining import check_affine_intertwiner, check_intertwiner
from identifiable.verdict import UndecidedError, Verdict

__version__ = "0.1.0"
__all__ = [
    "Verdict",
    "UndecidedError",
    "activations",
    "intertwiners",
    "check_intertwiner",
    "check_affine_intertwiner",
    "__version__",
]
