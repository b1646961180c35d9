"""VPoser pose prior: model, mocap data, training, sampling.

`prior.load(path=None)` returns a VPoser in eval mode (the shipped default when path is
None; an official VPoser v2 .ckpt, an experiment folder, or a saved state_dict otherwise).
"""

from prior.checkpoint import CheckpointKeyError, load
from prior.vposer import VPoser

__all__ = ["CheckpointKeyError", "VPoser", "load"]
