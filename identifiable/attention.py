"""Deprecated module path, kept so that ``from identifiable.attention import ...`` keeps working.

The attention model of eq. (10) [SMBK26] (its parameters, layers, the latent groups
``GL(d)^h x| S_h`` and the token-wise actions) lives in :mod:`identifiable.models.attention`; its
theory (adjunction, equivariance, alignment, the planted equivariant networks) in
:mod:`identifiable.theory.attention`; Theorem 4.1 for every model in
:func:`identifiable.latent_actions`.
"""

from identifiable.models.attention import *  # noqa: F401,F403
from identifiable.models.attention import __all__ as _model_names
from identifiable.theory.attention import *  # noqa: F401,F403
from identifiable.theory.attention import __all__ as _theory_names

__all__ = [*_model_names, *_theory_names]
