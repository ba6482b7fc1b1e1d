"""Models (Definition 3.1 [SMBK26]): the protocol (:mod:`.base`), the MLP of eq. (7)
(:mod:`.mlp`), multi-head attention of eq. (10) (:mod:`.attention`) and residual MLPs
(:mod:`.residual`, an extension beyond [SMBK26]).

``from identifiable.models import MLP, Theta, Layer, Model`` keeps working; the names below are
re-exported from the submodules.
"""

from identifiable.latent_groups import TrivialGroup
from identifiable.models.base import Layer, Model, as_batch, input_symbols
from identifiable.models.mlp import MLP, AffineLayer, Theta
from identifiable.models.residual import ResidualMLP, ResidualTheta

__all__ = ["Layer", "Model", "MLP", "AffineLayer", "Theta", "TrivialGroup", "input_symbols",
           "as_batch", "ResidualMLP", "ResidualTheta"]
