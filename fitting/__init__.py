"""SMPLify-X-style fitting of body models to 2D keypoints: batched, VPoser latent space, video.

    import body, keypoints
    from fitting import Fitter, FrameTargets, intrinsics, load_options, load_pose_space

    fitter = Fitter(body.create("anny"), load_pose_space("vposer"), load_options())
    kp = keypoints.detect("examples/basketball1.png").choose("largest")
    focal, center = intrinsics(kp.image_size)
    (fit,) = fitter.fit_frames([FrameTargets(keypoints.targets(kp), focal, center, kp.image_size)])
    fit.params["body_pose"]  # (21, 3) axis-angle; also global_orient, transl, shape, hands, latent

The parts: `targets` (what a frame is fitted to), `problem` (targets as tensors),
`options` (the fitter's options, parsed once from the config), `variables` (the table of
optimisation variables), `terms` (loss terms by name),
`stages` (stages as data, from configs/fit.yaml), `hypotheses` (start generators),
`starts` (their `Start` records and a run's `Anchor`), `starting` (start values),
`objective` (a stage's weighted terms), `driver` (the stage driver over the batched
L-BFGS of `optimize`), `codec` (variables <-> saved parameters), `fitter` (the
entry points). `fitting.pipeline.run` (and run_fit.py) adds inputs, batching,
video, outputs and resume.
"""

from fitting.camera import intrinsics
from fitting.config import load_config, load_options
from fitting.fitter import FitResult, Fitter
from fitting.priors import load_pose_space
from fitting.targets import FrameTargets

__all__ = ["FitResult", "Fitter", "FrameTargets", "intrinsics", "load_config", "load_options", "load_pose_space"]
