"""SMPL-X back end on a synthetic model file (real keys and shapes, random values), the BodyModel contract."""

from __future__ import annotations

import math
import os
import pickle

import numpy as np
import pytest
import torch

import body
from body.base import SMPLX_BETAS
from body.smplx_files import ModelFileError, load_model_arrays
from tests.smplx_fixture import synthetic_smplx_arrays, write_npz, write_pkl_like_official


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("smplx")
    arrays = synthetic_smplx_arrays()
    write_npz(d / "SMPLX_NEUTRAL.npz", arrays)
    write_pkl_like_official(d / "SMPLX_MALE.pkl", arrays)
    return d


def test_npz_and_pkl_load_to_the_same_model(model_dir):
    a = load_model_arrays(model_dir / "SMPLX_NEUTRAL.npz")
    b = load_model_arrays(model_dir / "SMPLX_MALE.pkl")
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], err_msg=k)
    m1 = body.create("smplx", model_path=model_dir)
    m2 = body.create("smplx", model_path=model_dir, gender="male")
    pose = torch.randn(3, 21, 3) * 0.3
    torch.testing.assert_close(m1(body_pose=pose).vertices, m2(body_pose=pose).vertices)


def test_forward_outputs_and_keypoints(model_dir):
    m = body.create("smplx", model_path=model_dir)
    assert m.num_shape == 10 and m.num_expression == 10
    out = m(transl=torch.tensor([[0.0, 0.0, 2.0]]))
    assert out.vertices.shape == (1, 10475, 3) and out.joints.shape == (1, 55, 3)
    # Rest joints are the regressor applied to the template, shifted by transl.
    ref = torch.as_tensor(m.J_regressor @ m.v_template) + torch.tensor([0.0, 0.0, 2.0])
    torch.testing.assert_close(out.joints[0], ref)
    for name in ("coco17", "coco23", "body25", "mediapipe33", "left_hand21", "right_hand21", "face68"):
        kp = out.keypoints(name)
        assert kp.shape[1] == len(body.keypoint_sets.keypoint_names(name)) and torch.isfinite(kp).all()
    # Knee flexion +90 deg about x sends the (synthetic, straight-down) shin backwards.
    pose = torch.zeros(1, 21, 3)
    pose[0, 3, 0] = math.pi / 2
    j = m(body_pose=pose).joints[0]
    assert j[7, 2] < j[4, 2] - 0.3


def test_gradients_reach_all_parameters(model_dir):
    m = body.create("smplx", model_path=model_dir)
    params = {
        k: torch.randn(2, *s, requires_grad=True)
        for k, s in {
            "global_orient": (3,),
            "body_pose": (21, 3),
            "transl": (3,),
            "shape": (10,),
            "left_hand_pose": (15, 3),
            "right_hand_pose": (15, 3),
            "jaw_pose": (3,),
            "expression": (10,),
        }.items()
    }
    out = m(**params)
    loss = sum(out.keypoints(s).square().sum() for s in ("body25", "left_hand21", "right_hand21", "face68"))
    loss.backward()
    for name, p in params.items():
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickle_is_refused(tmp_path):
    path = tmp_path / "SMPLX_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps({"v_template": _Evil()}, protocol=2))
    with pytest.raises(ModelFileError, match=r"refused to load global '(posix|os|nt)\.system'"):
        load_model_arrays(path)


def test_missing_model_names_files_and_source(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        body.create("smplx", model_path=tmp_path)
    msg = str(err.value)
    assert "SMPLX_NEUTRAL.npz" in msg and "smpl-x.is.tue.mpg.de" in msg and str(tmp_path) in msg
    with pytest.raises(FileNotFoundError, match="no model_path"):
        body.create("smplx")


def test_incomplete_model_file_names_missing_keys(tmp_path):
    arrays = synthetic_smplx_arrays()
    del arrays["posedirs"]
    np.savez(tmp_path / "m.npz", **arrays)
    with pytest.raises(ModelFileError, match="posedirs"):
        load_model_arrays(tmp_path / "m.npz")


def test_truncated_pkl_names_the_file(model_dir, tmp_path):
    path = tmp_path / "SMPLX_NEUTRAL.pkl"
    path.write_bytes((model_dir / "SMPLX_MALE.pkl").read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="SMPLX_NEUTRAL.pkl: cannot read"):
        load_model_arrays(path)


def test_contract_attributes_on_smplx(model_dir):
    m = body.create("smplx", model_path=model_dir, gender=None)
    assert isinstance(m, body.BodyModel) and m.path.name == "SMPLX_NEUTRAL.npz"
    assert m.num_shape == len(m.shape_names) == 10 and m.num_expression == 10
    assert m.has_hands and m.has_face and m.shape_space == SMPLX_BETAS
    assert m.faces.dtype == torch.long and m.faces.shape == (20908, 3)
    assert len(m.joint_names) == 55 and m.device == torch.device("cpu") and m.dtype == torch.float32
    assert {"coco17", "body25", "mediapipe33", "face68"} <= set(m.keypoint_sets())
    small = body.create("smplx", model_path=model_dir, num_betas=4, num_expression=3)
    assert small.num_shape == 4 and small.num_expression == 3
    assert small(shape=torch.zeros(2, 4), expression=torch.zeros(2, 3)).vertices.shape == (2, 10475, 3)


def test_smplx_arguments_are_checked(model_dir):
    m = body.create("smplx", model_path=model_dir)
    with pytest.raises(ValueError, match=r"expression has shape \(1, 5\); expected \(B, 10\)"):
        m(expression=torch.zeros(1, 5))
    with pytest.raises(
        ValueError,
        match=r"right_hand_pose has shape \(3, 15, 3\), expected \(2, 15, 3\) or "
        r"\(2, 45\) to match left_hand_pose of shape \(2, 45\)",
    ):
        m(left_hand_pose=torch.zeros(2, 45), right_hand_pose=torch.zeros(3, 15, 3))
    with pytest.raises(TypeError, match="betas"):
        m(betas=torch.zeros(1, 10))
    m.has_hands = False  # the base class refuses hands on a model without them
    with pytest.raises(ValueError, match="SmplxBody does not take left_hand_pose: it has no hands"):
        m(left_hand_pose=torch.zeros(1, 45))


def test_create_smplx_checks_gender_and_options(model_dir):
    with pytest.raises(ValueError, match=r"unknown SMPL-X arguments \['use_pca'\]"):
        body.create("smplx", model_path=model_dir, use_pca=False)
    with pytest.raises(ValueError, match=r"gender must be one of \('neutral', 'male', 'female'\).*'other'"):
        body.create("smplx", model_path=model_dir, gender="other")
    with pytest.raises(ValueError, match="gender must be one of"):  # checked before the missing path
        body.create("smplx", gender="other")
