"""The recipes of Table 1 [BK23] as data (torch-free, so that the command line can list them).

:mod:`identifiable.torch.recipes` trains them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Recipe", "RECIPES", "recipe_names"]


@dataclass(frozen=True)
class Recipe:
    """One row of Table 1 [BK23]."""

    #: the command-line name
    name: str
    #: "cnn", "gcnn" or "pgcnn" (:data:`identifiable.torch.vgg.ARCHITECTURES`, and the same
    #: names for the ResNet-20s, :data:`identifiable.torch.resnet.ARCHITECTURES`)
    arch: str
    #: random horizontal flips of the training images
    flip_augment: bool
    #: fraction of the epochs after which the inv-loss is on (None: never)
    inv_start: float | None
    description: str


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("cnn", "cnn", True, None, "CNN: ordinary VGG11, C.-E."),
    Recipe("cnn-noaug", "cnn", False, None, "CNN w/o aug: no horizontal flipping augmentation"),
    Recipe("cnn-inv", "cnn", True, 0.0, "CNN + inv-loss"),
    Recipe("cnn-late-inv", "cnn", True, 0.2, "CNN + late inv-loss (after 20% of the epochs)"),
    Recipe("gcnn", "gcnn", True, None, "GCNN: regular horizontal-flip GCNN-VGG11, C.-E."),
    Recipe("pgcnn", "pgcnn", True, None, "PGCNN: first two convs group convs, C.-E."),
    Recipe("pgcnn-late-inv", "pgcnn", True, 0.2, "PGCNN + late inv-loss"),
)}


def recipe_names() -> tuple[str, ...]:
    """The recipe names, in the order of Table 1 [BK23]."""
    return tuple(RECIPES)
