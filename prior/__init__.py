"""Pose priors and learned starts, by subject: `prior.data` (mocap readers, retargeting, dataset
build, splits), `prior.vposer` (the VPoser model, checkpoints, training, latent mixture, GMM,
samples), `prior.initialiser` (single-frame initialiser and temporal lifter) and
`prior.evaluation` (metrics, tasks, baselines, the evaluation suite); `prior.pose_spaces`: the
pose spaces (variable, body pose, penalty) that the fitter and the evaluation share.

`prior.load(path=None)` returns a VPoser in eval mode (the shipped default when path is
None; an official VPoser v2 .ckpt, an experiment folder, or a saved state_dict otherwise).
"""

from prior.vposer.checkpoint import CheckpointKeyError, load
from prior.vposer.model import VPoser

__all__ = ["CheckpointKeyError", "VPoser", "load"]
