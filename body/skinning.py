"""A body model's mesh bound to the SMPL-X joint tree by linear blend skinning (for exporters).

`bind_skin(model, shape)` gives what a skinned-mesh file needs: the mesh in its
bind pose, skin handles that ride rigidly on the 55 SMPL-X joints, their inverse
bind matrices and the vertex weights. A handle's frame is its joint's
world-aligned frame (rotation: the joint's global rotation, origin: the joint),
so a posed vertex is  sum_h w[v, h] * [G_joint(h) | p_joint(h)] @ inverse_bind[h] @ v_bind.

Skin weights are not part of the `BodyModel` contract yet, so this module reads
them from each back end:
- Anny binds its mesh in its native A-pose rest. Every SOMA bone that carries
  weight becomes a handle on the SMPL-X joint mapped onto it, or, for a bone with
  no SMPL-X twin (Hips, Neck2, finger metacarpals), on its nearest mapped
  ancestor: such bones stay at identity in Anny's pose, so they move rigidly with
  that joint. This reproduces Anny's own skinning exactly.
- SMPL-X binds its shaped T-pose template with its own weights, one handle per
  joint; its pose-corrective blend shapes are not skinning and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from body.base import BodyModel


@dataclass
class Skin:
    """A mesh bound to the SMPL-X joints (see the module docstring); float tensors on the model's device."""

    bind_vertices: torch.Tensor  # (V, 3)
    rest_joints: torch.Tensor  # (55, 3) the joints at zero pose: each handle frame's origin there
    handle_joints: torch.Tensor  # (H,) long: the SMPL-X joint each handle rides on
    handle_names: list[str]  # (H,) a joint's own name, or the back end's bone name for an extra handle
    inverse_bind: torch.Tensor  # (H, 4, 4)
    weights: torch.Tensor  # (V, H), rows sum to 1


def bind_skin(model: BodyModel, shape: torch.Tensor) -> Skin:
    """The model's full mesh at `shape` (num_shape,) bound to the SMPL-X joints.
    Raises TypeError for a model whose skinning this module does not know."""
    from body.anny_body import AnnyBody
    from body.smplx_body import SmplxBody

    shape = shape.to(device=model.device, dtype=model.dtype).reshape(1, model.num_shape)
    if isinstance(model, SmplxBody):
        skin = _smplx_skin(model, shape)
    elif isinstance(model, AnnyBody):
        skin = _anny_skin(model, shape)
    else:
        raise TypeError(f"no skinning known for {type(model).__name__}; expected AnnyBody or SmplxBody")
    return _in_pelvis_frame(skin)


def _in_pelvis_frame(skin: Skin) -> Skin:
    """The same skin with its bind mesh moved as the pelvis's handle moves it into the zero pose
    (y up, facing +z; Anny's native rest is z up), so viewers that do not skin show it upright."""
    root = int((skin.handle_joints == 0).nonzero()[0, 0])
    move = _translation(skin.rest_joints[0]) @ skin.inverse_bind[root]
    vertices = skin.bind_vertices @ move[:3, :3].T + move[:3, 3]
    inverse_bind = skin.inverse_bind @ torch.linalg.inv(move)
    return Skin(vertices, skin.rest_joints, skin.handle_joints, skin.handle_names, inverse_bind, skin.weights)


def _translation(t: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 4, 4) translation matrices."""
    m = torch.eye(4, dtype=t.dtype, device=t.device).expand(*t.shape[:-1], 4, 4).clone()
    m[..., :3, 3] = t
    return m


def _smplx_skin(model, shape: torch.Tensor) -> Skin:
    with torch.no_grad():
        rest = model(shape=shape)
    joints = rest.joints[0, : model.lbs_weights.shape[1]]
    return Skin(
        bind_vertices=rest.vertices[0],
        rest_joints=joints,
        handle_joints=torch.arange(len(joints), device=joints.device),
        handle_names=list(model.joint_names[: len(joints)]),
        inverse_bind=_translation(-joints),
        weights=model.lbs_weights.clone(),
    )


def _anny_skin(model, shape: torch.Tensor) -> Skin:
    from body.anny_body import SMPLX_TO_SOMA

    anny = model.model
    labels = list(anny.bone_labels)
    joint_of = {labels.index(bone): j for j, bone in enumerate(SMPLX_TO_SOMA)}

    def ride(bone: int) -> int:
        while bone not in joint_of:
            bone = anny.bone_parents[bone]
        return joint_of[bone]

    with torch.no_grad():
        out = anny(None, model.phenotypes(shape))  # zero pose: the T-pose, and the A-pose rest it is skinned from
        joints = model(shape=shape).joints[0, : len(SMPLX_TO_SOMA)]
    weighted = sorted(set(anny.vertex_bone_indices[anny.vertex_bone_weights > 0].tolist()))
    # Handles in joint order, a joint's own bone before the extra bones riding on it.
    bones = sorted(weighted, key=lambda b: (b not in joint_of, ride(b), b))
    on = torch.tensor([ride(b) for b in bones], device=model.device)
    # The handle's frame at zero pose is [I | joint]; the bone's world pose there is bone_poses.
    inverse_bind = (
        _translation(-joints[on]) @ out["bone_poses"][0, bones] @ torch.linalg.inv(out["rest_bone_poses"][0, bones])
    )
    column = {b: h for h, b in enumerate(bones)}
    index = torch.tensor([column.get(b, 0) for b in range(len(labels))], device=model.device)
    weights = torch.zeros(out["rest_vertices"].shape[1], len(bones), device=model.device, dtype=model.dtype)
    weights.scatter_add_(1, index[anny.vertex_bone_indices.long()], anny.vertex_bone_weights.to(model.dtype))
    names = [model.joint_names[ride(b)] if b in joint_of else labels[b] for b in bones]
    return Skin(out["rest_vertices"][0], joints, on, names, inverse_bind, weights)
