"""Deprecated location of :mod:`identifiable.numbers` (the number policy); kept so that
``identifiable.linalg`` imports keep working."""

from identifiable.numbers import *  # noqa: F401,F403
from identifiable.numbers import __all__  # noqa: F401
