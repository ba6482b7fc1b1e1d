"""Compatibility path: equivariance and the adjunction of MLPs live in
:mod:`identifiable.theory.equivariance`, Theorem 4.1 in :mod:`identifiable.theory.latent_actions`.
"""

from identifiable.theory.equivariance import *  # noqa: F401,F403
from identifiable.theory.equivariance import __all__ as _names
from identifiable.theory.latent_actions import latent_actions  # noqa: F401

__all__ = [*_names, "latent_actions"]
