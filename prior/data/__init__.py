"""Mocap data for the pose prior: readers (BVH, ASF/AMC, AMASS), retargeting to SMPL-X
body poses, mirroring, forward kinematics, the dataset builder (`python -m prior.data.build`),
its train/validation splits (`splits`) and the clip windows of the temporal lifter (`sequences`)."""

from prior.data.fk import forward_kinematics, smplx_forward_kinematics
from prior.data.load import find_asf, load_motion
from prior.data.mirror import mirror_body_pose, mirror_motion
from prior.data.motion import Motion, MotionFormatError, SourceMotion
from prior.data.retarget import bone_direction_errors, retarget
from prior.data.skeleton_maps import CMU_ASF, CMU_DAZ_BVH, SKELETON_MAPS, SkeletonMap
from prior.data.sources import actor_of

__all__ = [
    "CMU_ASF",
    "CMU_DAZ_BVH",
    "SKELETON_MAPS",
    "Motion",
    "MotionFormatError",
    "SkeletonMap",
    "SourceMotion",
    "actor_of",
    "bone_direction_errors",
    "find_asf",
    "forward_kinematics",
    "load_motion",
    "mirror_body_pose",
    "mirror_motion",
    "retarget",
    "smplx_forward_kinematics",
]
