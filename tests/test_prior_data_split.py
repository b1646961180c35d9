"""Dataset v2: actors across archives, the split by actor, source balancing, attributions."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from prior.data.build import DEFAULT_VAL_SUBJECTS, balance, build_dataset
from prior.data.sources import ARCHIVES, actor_of, licence_for
from tests.mocap_bundle import BUNDLED_MOCAP
from tests.prior_data_mocap import extract_members

# Clips of CMU subject 16 from three archives (ASF-named BVH, trimmed ASF/AMC, an SNU segment on
# the MotionBuilder-style skeleton), CMU 07, and the FAIR archive's two actors.
MEMBERS = {
    "cmu_daz_more_bvh": ("16/16_01.bvh", "LICENSE-or-SOURCE.txt"),
    "cmu_gait_asfamc": ("16/16.asf", "16/16_15.amc", "LICENSE-or-SOURCE.txt"),
    "snu_martial_bvh": ("cmu16_segments/16_08_1.bvh", "snu_martial_arts/s_005_3_1.bvh", "LICENSE-or-SOURCE.txt"),
    "cmu_mbstyle_bvh": ("07/07_01.bvh", "07/07_02.bvh", "LICENSE-or-SOURCE.txt"),
    "fair_bvh": ("fair1_dab.bvh", "cmu1_jumping_jacks.bvh", "LICENSE-or-SOURCE.txt"),
}


@pytest.fixture(scope="module")
def mocap(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CMU 16 across three of the full archives (skips without them)."""
    root = tmp_path_factory.mktemp("mocap_v2")
    for archive, members in MEMBERS.items():
        extract_members(shared_data / "mocap" / f"{archive}.tar.xz", {f"{archive}/{m}" for m in members}, root)
    return root


def test_actor_names() -> None:
    assert actor_of("cmu_asfamc", "02/02_01.amc") == "cmu/02"
    assert actor_of("cmu_gait_asfamc", "16/16_15.amc") == actor_of(
        "snu_basketball_bvh", "cmu16_walk_segments/16_11_1.bvh"
    )
    assert actor_of("snu_interactive_bvh", "cmu69_walk/69_01_1.bvh") == "cmu/69"
    assert actor_of("snu_interactive_bvh", "snu_tennis/tennis_KangTennisF15.bvh") == "snu/kang"
    assert actor_of("snu_woody2_bvh", "woody2_Samsung/wd2_Take_001.bvh") == "snu/woody2"
    assert actor_of("snu_basketball_bvh", "snu_basketball/s_006_2_3.bvh") == "snu_basketball/p3"
    assert (
        actor_of("fair_bvh", "fair1_dab.bvh") == "fair/fair1" and actor_of("fair_bvh", "cmu1_x.bvh") == "fair_bvh/cmu1"
    )
    assert actor_of("hdm05_asfamc", "bk/HDM_bk_x_120.amc") == "hdm05_asfamc/bk"
    assert actor_of("reactidle_bvh", "acted/003_acted.bvh") == actor_of("reactidle_bvh", "genuine/003_genuine.bvh")
    assert actor_of("reactidle_bvh", "genuine/003_genuine.bvh") == "reactidle/003"
    assert actor_of("cmu_bvh", "indian/13.bvh") == "cmu_bvh/indian"
    assert actor_of("my_amass", "CMU/07/07_01_poses.npz") == "my_amass/CMU"


def test_every_shared_archive_has_a_licence_and_attribution(shared_data: Path) -> None:
    archives = sorted(p.name.removesuffix(".tar.xz") for p in (shared_data / "mocap").glob("*.tar.xz"))
    assert len(archives) == 13 and set(archives) <= set(ARCHIVES)
    for name in archives:
        info = licence_for(name)
        assert info["licence"] and info["attribution"], name
        if name != "hdm05_asfamc":
            assert "mocap.cs.cmu.edu" in info["attribution"] or "cmu" not in name, name
    assert "Müller" in licence_for("hdm05_asfamc")["attribution"]
    assert licence_for("snu_martial_bvh")["licence"].startswith("BSD-3-Clause")
    assert licence_for("something_else")["licence"].startswith("unknown")


def test_split_by_actor_across_archives(mocap: Path, tmp_path: Path) -> None:
    # The v1 subject name of one archive's CMU 16 clips holds out CMU 16 in every archive.
    manifest = build_dataset(mocap, tmp_path, fps=10, val_subjects=["cmu_gait_asfamc/16", "fair/fair1"], progress=False)
    split = manifest["split"]
    assert split["val_subjects"] == ["cmu/16", "fair/fair1"] and not split["val_subjects_missing"]
    assert set(split["train_subjects"]) == {"cmu/07", "fair_bvh/cmu1", "snu_martial/p1"}
    assert manifest["actors"]["cmu/16"]["datasets"] == ["cmu_daz_more_bvh", "cmu_gait_asfamc", "snu_martial_bvh"]
    train, val = np.load(tmp_path / "train.npz"), np.load(tmp_path / "val.npz")
    train_actors = set(train["actors"][np.unique(train["actor"])])
    val_actors = set(val["actors"][np.unique(val["actor"])])
    assert train_actors.isdisjoint(val_actors) and val_actors == {"cmu/16", "fair/fair1"}
    for data, name in ((train, "train"), (val, "val")):  # every pose's clip and actor agree with the manifest
        rows = {r["clip"]: r for r in manifest["clips"]}
        for clip, actor in {(c, a) for c, a in zip(data["clip"], data["actor"])}:
            row = rows[data["clips"][clip]]
            assert row["split"] == name and row["actor"] == data["actors"][actor]
    # Inserted T-pose first frames are dropped (CMU MotionBuilder-style), and reported.
    assert all(r["frames_inserted"] == 1 for r in manifest["clips"] if r["clip"].startswith("cmu_mbstyle_bvh/"))
    gait = next(r for r in manifest["clips"] if r["clip"].endswith("16_15.amc"))
    assert gait["first_frame"] == 10 and gait["skeleton"] == "cmu_asf"
    # Licences and attributions per archive, with each archive's own LICENSE-or-SOURCE.txt.
    for name, info in manifest["datasets"].items():
        assert info["licence"] and info["attribution"]
        assert "Source repo" in info["licence_file"], name
    assert manifest["datasets"]["fair_bvh"]["skeletons"] == {"cmu_max_bvh": 1, "fair_bvh": 1}


def test_balance_rule() -> None:
    counts = {("a", "x"): 100, ("a", "y"): 300, ("b", "y"): 50, ("c", "z"): 10}
    assert balance(counts, None, None) == counts
    # Actor a (400 poses) is cut to 200, both of its archives alike; then archive y (150 + 50) to 100.
    quota = balance(counts, 200, None)
    assert quota == {("a", "x"): 50, ("a", "y"): 150, ("b", "y"): 50, ("c", "z"): 10}
    quota = balance(counts, 200, 100)
    assert quota == {("a", "x"): 50, ("a", "y"): 75, ("b", "y"): 25, ("c", "z"): 10}


@pytest.fixture(scope="module")
def three_archives(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled FAIR, SNU martial arts and SNU basketball archives."""
    root = tmp_path_factory.mktemp("three_archives")
    for archive in ("fair_bvh", "snu_martial_bvh", "snu_basketball_bvh"):
        shutil.copy(BUNDLED_MOCAP / f"{archive}.tar.xz", root)
    return root


def test_balancing_caps_actors_and_archives(three_archives: Path, tmp_path: Path) -> None:
    mocap = three_archives
    uncapped = build_dataset(mocap, tmp_path / "all", fps=10, mirror=False, max_actor_poses=None,
                             max_dataset_poses=None, progress=False)  # fmt: skip
    capped = build_dataset(mocap, tmp_path / "capped", fps=10, mirror=False, max_actor_poses=300,
                           max_dataset_poses=500, progress=False)  # fmt: skip
    assert capped["settings"]["balance"]["max_actor_poses"] == 300
    before, after = uncapped["actors"], capped["actors"]
    # SNU martial p1 (478 poses) and the FAIR actor (409) are cut to 300; then the martial-arts archive
    # (300 + 295 + 237) to 500, its three actors alike; SNU basketball p2 (139) keeps all.
    for actor in ("snu_martial/p1", "fair/fair1"):
        assert before[actor]["poses"] > 300 and after[actor]["poses"] <= 300 and after[actor]["capped"]
    basketball = "snu_basketball/p2"
    assert before[basketball]["poses"] == after[basketball]["poses"] < 300 and not after[basketball]["capped"]
    assert before["snu_martial/p3"]["poses"] < 300 and after["snu_martial/p3"]["capped"]
    assert sum(after[f"snu_martial/p{i}"]["poses"] for i in (1, 2, 3)) <= 500
    for name, info in capped["datasets"].items():
        assert info["poses"] <= 500 and info["poses"] <= uncapped["datasets"][name]["poses"]
    assert set(capped["settings"]["balance"]["capped_actors"]) == {a for a, r in after.items() if r["capped"]}
    # The npz holds exactly the kept poses, a subset of the uncapped build's, in clip order.
    full = np.load(tmp_path / "all" / "train.npz")
    kept = np.load(tmp_path / "capped" / "train.npz")
    assert len(kept["body_pose"]) == capped["counts"]["train"]["frames"] < len(full["body_pose"])
    full_keys = {(str(full["clips"][c]), int(f)) for c, f in zip(full["clip"], full["frame"])}
    kept_keys = [(str(kept["clips"][c]), int(f)) for c, f in zip(kept["clip"], kept["frame"])]
    assert set(kept_keys) <= full_keys and len(set(kept_keys)) == len(kept_keys)
    # Seeded: the same caps pick the same poses.
    again = build_dataset(mocap, tmp_path / "again", fps=10, mirror=False, max_actor_poses=300, max_dataset_poses=500,
                          progress=False)  # fmt: skip
    assert again["actors"] == capped["actors"]
    assert np.array_equal(np.load(tmp_path / "again" / "train.npz")["frame"], kept["frame"])


def test_default_validation_actors_are_new_and_old() -> None:
    assert {"hdm05_asfamc/bk", "cmu_bvh/indian"} <= set(DEFAULT_VAL_SUBJECTS)  # v1 numbers stay comparable
    assert {"fair/fair1", "cmu/69"} <= set(DEFAULT_VAL_SUBJECTS)
    config = (Path(__file__).resolve().parents[1] / "configs" / "train_prior.yaml").read_text()
    assert all(actor in config for actor in DEFAULT_VAL_SUBJECTS)  # the config states the choice
