"""Random plausible body shapes (synthetic training and benchmark data)."""

from __future__ import annotations

import numpy as np

from body.base import BodyModel

# Anny phenotype ranges of plausible adults (0..1 scale); other models get N(0, 0.5) shapes.
ADULT_PHENOTYPES = {
    "gender": (0.0, 1.0),
    "age": (0.55, 0.9),
    "muscle": (0.2, 0.8),
    "weight": (0.2, 0.8),
    "height": (0.2, 0.8),
    "proportions": (0.3, 0.7),
}


def random_shapes(model: BodyModel, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, num_shape) plausible adult shapes in the model's shape parameters."""
    names = getattr(model, "shape_names", None)
    if names is not None and set(names) == set(ADULT_PHENOTYPES):
        p = np.stack([rng.uniform(*ADULT_PHENOTYPES[k], size=n) for k in names], 1).clip(1e-3, 1 - 1e-3)
        return (np.log(p / (1 - p)) - model.shape_offset.cpu().numpy()).astype(np.float32)
    return rng.normal(0, 0.5, (n, model.num_shape)).astype(np.float32)
