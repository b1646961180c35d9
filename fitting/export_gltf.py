"""glTF 2.0 binary (.glb) of a `Motion`: the fitted body as a skinned mesh, its skeleton, the animation, the camera.

Nodes: the 55 SMPL-X joints (named as SMPL-X names them, rest frames aligned with
the world axes, translations = the fitted shape's rest offsets), plus, on Anny,
one fixed child node per extra bone its skinning uses (Hips, Neck2, the finger
metacarpals; `body.skinning`); the mesh, bound to them (`body.skinning.bind_skin`,
4 influences per vertex, the glTF baseline every viewer supports); the camera
that saw the person (vertical field of view from fy; glTF has no principal
point, so an off-centre one is dropped). One animation: every joint's rotation
and the pelvis's translation at the fitted frames' times (linear).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pygltflib as gl
import torch
from scipy.spatial.transform import Rotation

from body.base import BodyModel
from body.skeleton import SMPLX_JOINT_NAMES
from body.skinning import bind_skin
from configs.files import atomic_path
from fitting.export_motion import FLIP, SMPLX_PARENTS, Motion

INFLUENCES = 4  # joints per vertex


class _Blob:
    """The binary chunk, built accessor by accessor."""

    def __init__(self, gltf: gl.GLTF2) -> None:
        self.gltf = gltf
        self.data = bytearray()

    def add(self, array: np.ndarray, kind: str, target: int | None = None, bounds: bool = False) -> int:
        """Append `array` (rows of `kind`: SCALAR, VEC3, MAT4, ...) as a buffer view and accessor; its index."""
        component = {
            np.float32: gl.FLOAT,
            np.uint32: gl.UNSIGNED_INT,
            np.uint16: gl.UNSIGNED_SHORT,
            np.uint8: gl.UNSIGNED_BYTE,
        }
        array = np.ascontiguousarray(array)
        self.data.extend(b"\0" * (-len(self.data) % 4))
        self.gltf.bufferViews.append(
            gl.BufferView(buffer=0, byteOffset=len(self.data), byteLength=array.nbytes, target=target)
        )
        self.data.extend(array.tobytes())
        rows = array.reshape(len(array), -1)
        self.gltf.accessors.append(
            gl.Accessor(
                bufferView=len(self.gltf.bufferViews) - 1,
                componentType=component[array.dtype.type],
                count=len(array),
                type=kind,
                min=rows.min(0).tolist() if bounds else None,
                max=rows.max(0).tolist() if bounds else None,
            )
        )
        return len(self.gltf.accessors) - 1


def write_glb(path: Path, motion: Motion, model: BodyModel) -> None:
    """Write `motion` on `model`'s mesh at the clip's fitted shape as a .glb at `path` (atomically)."""
    skin = bind_skin(model, torch.as_tensor(motion.shape))
    gltf = gl.GLTF2(asset=gl.Asset(generator="bodyfit fitting.export", version="2.0"))
    blob = _Blob(gltf)
    count = len(SMPLX_JOINT_NAMES)
    offsets = motion.offsets
    for j, name in enumerate(SMPLX_JOINT_NAMES):
        children = [c for c, p in enumerate(SMPLX_PARENTS) if p == j]
        gltf.nodes.append(gl.Node(name=name, translation=offsets[j].tolist(), children=children))
    # Skin joints: every SMPL-X joint, then a fixed child node per extra handle riding on one.
    handle_joints = skin.handle_joints.tolist()
    skin_node = {}
    for h, (j, name) in enumerate(zip(handle_joints, skin.handle_names)):
        if name == SMPLX_JOINT_NAMES[j]:
            skin_node[h] = j
        else:
            skin_node[h] = len(gltf.nodes)
            gltf.nodes[j].children.append(len(gltf.nodes))
            gltf.nodes.append(gl.Node(name=name))
    joints = list(range(count)) + sorted(set(skin_node.values()) - set(range(count)))
    inverse_bind = np.tile(np.eye(4), (len(joints), 1, 1))
    inverse_bind[:count, :3, 3] = -skin.rest_joints.double().cpu().numpy()
    for h, node in skin_node.items():
        inverse_bind[joints.index(node)] = skin.inverse_bind[h].double().cpu().numpy()
    column = np.array([joints.index(skin_node[h]) for h in range(len(handle_joints))])

    vertices = skin.bind_vertices.double().cpu().numpy()
    faces = model.faces.cpu().numpy()
    weights = skin.weights.double().cpu().numpy()
    top = np.argsort(-weights, axis=1)[:, :INFLUENCES]
    top_weights = np.take_along_axis(weights, top, 1)
    top_weights /= top_weights.sum(1, keepdims=True)
    index_type = np.uint8 if len(joints) < 256 else np.uint16
    attributes = gl.Attributes(
        POSITION=blob.add(vertices.astype(np.float32), "VEC3", gl.ARRAY_BUFFER, bounds=True),
        NORMAL=blob.add(_vertex_normals(vertices, faces).astype(np.float32), "VEC3", gl.ARRAY_BUFFER),
        JOINTS_0=blob.add(np.where(top_weights > 0, column[top], 0).astype(index_type), "VEC4", gl.ARRAY_BUFFER),
        WEIGHTS_0=blob.add(top_weights.astype(np.float32), "VEC4", gl.ARRAY_BUFFER),
    )
    indices = blob.add(faces.reshape(-1).astype(np.uint32), "SCALAR", gl.ELEMENT_ARRAY_BUFFER)
    gltf.materials.append(
        gl.Material(
            name="body",
            pbrMetallicRoughness=gl.PbrMetallicRoughness(
                baseColorFactor=[0.75, 0.75, 0.78, 1.0], metallicFactor=0.0, roughnessFactor=0.8
            ),
        )
    )
    gltf.meshes.append(
        gl.Mesh(name="body", primitives=[gl.Primitive(attributes=attributes, indices=indices, material=0)])
    )
    ibm = blob.add(inverse_bind.transpose(0, 2, 1).reshape(-1, 16).astype(np.float32), "MAT4")
    gltf.skins.append(gl.Skin(name="smplx", joints=joints, skeleton=0, inverseBindMatrices=ibm))
    gltf.nodes.append(gl.Node(name="body", mesh=0, skin=0))
    body_node = len(gltf.nodes) - 1

    gltf.cameras.append(_camera(motion))
    cam_rot = Rotation.from_matrix(motion.world[:3, :3] @ FLIP).as_quat()
    gltf.nodes.append(
        gl.Node(name="camera", camera=0, rotation=cam_rot.tolist(), translation=motion.world[:3, 3].tolist())
    )
    camera_node = len(gltf.nodes) - 1

    gltf.animations.append(_animation(blob, motion))
    gltf.scenes.append(gl.Scene(name=motion.name, nodes=[0, body_node, camera_node]))
    gltf.scene = 0
    gltf.buffers.append(gl.Buffer(byteLength=len(blob.data)))
    gltf.set_binary_blob(bytes(blob.data))
    with atomic_path(path) as tmp:
        gltf.save_binary(str(tmp))


def _animation(blob: _Blob, motion: Motion) -> gl.Animation:
    """Linear keys at the fitted frames' times: every joint's rotation, the pelvis's translation."""
    times = blob.add((motion.indices / motion.fps).astype(np.float32), "SCALAR", bounds=True)
    quats = Rotation.from_matrix(motion.rotations.reshape(-1, 3, 3)).as_quat().reshape(*motion.rotations.shape[:2], 4)
    # Consecutive keys on the same hemisphere, so interpolation takes the short way round.
    flips = np.sign(np.sum(quats[1:] * quats[:-1], axis=-1, keepdims=True))
    quats[1:] *= np.cumprod(np.where(flips == 0, 1.0, flips), axis=0)
    samplers = [gl.AnimationSampler(input=times, output=blob.add(motion.root.astype(np.float32), "VEC3"))]
    channels = [gl.AnimationChannel(sampler=0, target=gl.AnimationChannelTarget(node=0, path="translation"))]
    for j in range(quats.shape[1]):
        samplers.append(gl.AnimationSampler(input=times, output=blob.add(quats[:, j].astype(np.float32), "VEC4")))
        channels.append(
            gl.AnimationChannel(sampler=len(samplers) - 1, target=gl.AnimationChannelTarget(node=j, path="rotation"))
        )
    return gl.Animation(name=motion.name, samplers=samplers, channels=channels)


def _camera(motion: Motion) -> gl.Camera:
    """The fit's pinhole camera: vertical field of view and aspect ratio from the focal lengths and image size."""
    (fx, fy), (w, h) = motion.focal, motion.image_size
    return gl.Camera(
        type="perspective",
        perspective=gl.Perspective(
            yfov=2.0 * math.atan(h / (2.0 * fy)), aspectRatio=float((w / fx) / (h / fy)), znear=0.05
        ),
    )


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit area-weighted vertex normals ((0, 1, 0) for a vertex on no face)."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    face_normals = np.cross(b - a, c - a)
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.where(length > 0, normals / np.maximum(length, 1e-12), [0.0, 1.0, 0.0])
