"""identifiable: executable theory of identifiable and equivariant neural networks."""

from identifiable.verdict import Verdict

__version__ = "0.1.0"
__all__ = ["Verdict", "__version__"]
