"""Compatibility path: alignment, the function check, identifiability and the functional dimension
now live in :mod:`identifiable.theory` (``align``, ``same_function``, ``identifiability``,
``dimension``). ``identifiable`` is the old name of :func:`is_identifiable`.
"""

from identifiable.theory.align import align, check_pair  # noqa: F401
from identifiable.theory.dimension import (  # noqa: F401
    FUNCTIONAL_DIMENSION_MAX_BYTES,
    FunctionalDimension,
    functional_dimension,
    jacobian,
)
from identifiable.theory.identifiability import (  # noqa: F401
    activation_family,
    is_identifiable,
    weakly_identifiable,
)
from identifiable.theory.same_function import same_function  # noqa: F401

identifiable = is_identifiable

__all__ = ["align", "same_function", "identifiable", "is_identifiable", "weakly_identifiable",
           "functional_dimension", "FunctionalDimension", "jacobian", "activation_family"]
