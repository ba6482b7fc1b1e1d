"""Deprecated module path: the latent groups K_i now live in :mod:`identifiable.latent_groups`.

Kept so that ``from identifiable.intertwiners import Monomial`` in existing code keeps working;
new code imports :mod:`identifiable.latent_groups` (the name ``intertwiners`` was easy to confuse
with :mod:`identifiable.intertwining`, which decides eq. (8)).
"""

from identifiable.latent_groups import *  # noqa: F401,F403
from identifiable.latent_groups import __all__  # noqa: F401
