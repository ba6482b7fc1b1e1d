"""Compatibility path: submodels (Definition 3.2 [SMBK26]) and ``reduce`` live in
:mod:`identifiable.theory.submodels`."""

from identifiable.theory.submodels import *  # noqa: F401,F403
from identifiable.theory.submodels import __all__  # noqa: F401
