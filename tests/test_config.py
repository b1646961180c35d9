"""The one config loader (configs.loader) on the packaged YAMLs and their schemas."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

import pytest
from omegaconf import OmegaConf

import configs
from configs import ConfigError, save_config
from configs.training import InitialiserTraining, LifterTraining, VPoserTraining
from fitting.config import FitConfig, load_config
from prior.evaluation.evaluate import checkpoint_config
from prior.evaluation.evaluate import main as evaluate_main
from prior.vposer.train import load_config as load_train_config


def test_overrides_and_a_user_file_layer_on_the_defaults(tmp_path):
    cfg = load_config(None, ["optimizer.max_iter=7", "camera.focal=[800,820]"])
    assert cfg.optimizer.max_iter == 7 and list(cfg.camera.focal) == [800, 820]
    user = tmp_path / "my.yaml"
    user.write_text("prior:\n  kind: none\n")
    assert load_config(user, ["batch_size=2"]).prior.kind == "none"


def test_unknown_keys_are_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match=r"'optimizr' \(not in fit.yaml\)"):
        load_config(None, ["optimizr.max_iter=7"])
    with pytest.raises(ConfigError, match=r"'optimizer.max_iters' \(not in fit.yaml\)"):
        load_config(None, ["optimizer.max_iters=7"])
    user = tmp_path / "typo.yaml"
    user.write_text("camera:\n  fov: 50\n")
    with pytest.raises(ConfigError, match=r"typo.yaml: unknown config key 'camera.fov'"):
        load_config(user)
    with pytest.raises(ConfigError, match=r"'train.epochs' \(not in train_prior.yaml\)"):
        load_train_config(overrides=["train.epochs=3"])
    with pytest.raises(AttributeError):  # the result is strict too
        load_config().camera.fov


@pytest.mark.parametrize(
    "override, message",
    [
        ("batch_size=abc", "batch_size must be an integer, got 'abc'"),
        ("batch_size=0", "batch_size must be >= 1, got 0"),
        ("batch_size=true", "batch_size must be an integer, got True"),
        ("batch_size=null", "batch_size must be an integer, got null"),
        ("threads=-1", "threads must be >= 1, got -1"),
        ("camera.fov_deg=0", "camera.fov_deg must be > 0 and < 180, got 0"),
        ("camera.fov_deg=180", "camera.fov_deg must be > 0 and < 180, got 180"),
        ("camera.focal=-500", "camera.focal must be .*, got -500"),
        ("camera.focal=.nan", "camera.focal must be .*, got nan"),
        ("camera.focal=nan", "camera.focal must be .*, got 'nan'"),
        ("camera.focal=[800,.inf]", r"camera.focal must be .*, got \[800, inf\]"),
        ("camera.center=[1,2,3]", r"camera.center must be .*, got \[1.0, 2.0, 3.0\]"),
        ("camera.image_size=[640,0]", r"camera.image_size must be .*, got \[640, 0\]"),
        ("device=foo", "device must be cpu, cuda, cuda:N or mps, got 'foo'"),
        ("device=cuda:abc", "device must be cpu, cuda, cuda:N or mps, got 'cuda:abc'"),
        ("prior.kind=nonsense", "prior.kind must be one of vposer, gmm, none, got 'nonsense'"),
        ("keypoints.person=nonsense", "keypoints.person must be one of all, largest, confident, got 'nonsense'"),
        ("body.gender=alien", "body.gender must be one of neutral, male, female, got 'alien'"),
        ("init.side_view_cos=1.5", r"init.side_view_cos must be >= 0 and <= 1, got 1.5"),
        ("output.mesh=yes please", "output.mesh must be true or false, got 'yes please'"),
        ("camera=5", "camera must be a mapping, got 5"),
        ("video.overlap=40", r"video.overlap \(40\) must be smaller than video.window \(32\)"),
        ("optimizer.max_frames_per_call=-16", "optimizer.max_frames_per_call must be >= 0, got -16"),
        (
            "optimizer.max_frames_per_call=100",
            r"optimizer.max_frames_per_call \(100\) must be a multiple of optimizer.frames_per_call \(16\)",
        ),
    ],
)
def test_bad_values_are_refused_naming_the_override_and_key(override, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_config(None, [override])
    assert "\n" not in str(err.value)
    if "window" not in message and "multiple" not in message:
        assert str(err.value).startswith(f"override {override!r}: ")


def test_good_values_and_types():
    cfg = load_config(
        None,
        [
            "device=cuda:1",
            "threads=2",
            "camera.focal=700",
            "camera.fov_deg=50",
            "data.rho=50.5",
            "camera.center=[320,240.5]",
            "camera.image_size=[640,480]",
        ],
    )
    assert cfg.device == "cuda:1" and cfg.threads == 2 and cfg.camera.focal == 700
    assert isinstance(cfg.camera.fov_deg, float) and cfg.camera.fov_deg == 50.0  # a float key takes an int
    assert isinstance(cfg.optimizer.rel_tolerance, float)
    assert isinstance(load_config(None, ["optimizer.rel_tolerance=0"]).optimizer.rel_tolerance, float)
    assert load_config(None, ["threads=null"]).threads is None


def test_bad_files_are_named(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("camera: [1\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_config(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="list.yaml: not a YAML mapping"):
        load_config(listed)
    with pytest.raises(ConfigError, match="missing.yaml not found"):
        load_config(tmp_path / "missing.yaml")
    user = tmp_path / "bad_value.yaml"
    user.write_text("batch_size: -3\n")
    with pytest.raises(ConfigError, match="bad_value.yaml: batch_size must be >= 1, got -3"):
        load_config(user)
    with pytest.raises(ConfigError, match="override 'batch_size': overrides look like key.sub=value"):
        load_config(None, ["batch_size"])
    with pytest.raises(ConfigError, match="no packaged config nonexistent.yaml"):
        configs.load_config("nonexistent", FitConfig)


def test_open_mappings_take_new_entries_and_strict_ones_refuse_keys(tmp_path):
    user = tmp_path / "my_stage.yaml"
    user.write_text("stages:\n  mine:\n    free: [pose]\n    max_iter: null\n    weights: {body_data: 2}\n")
    cfg = configs.load_config(
        "fit", FitConfig, user, ["stages.mine.weights.bending=1", "stages.camera.weights.depth=3"]
    )
    assert cfg.stages.mine == {"free": ["pose"], "max_iter": None, "weights": {"body_data": 2.0, "bending": 1.0}}
    assert cfg.stages.camera.weights.depth == 3.0 and "mine" in load_config(user).stages
    cfg.stages.camera.weights.another = 1.0  # open in the result too ...
    with pytest.raises(Exception):  # ... while a stage itself and the sections stay strict
        cfg.stages.mine.typo = 1
    with pytest.raises(Exception):
        cfg.camera.typo = 1
    with pytest.raises(ConfigError, match="override 'stages.mine.weights.a=-1': stages.mine.weights.a must be >= 0"):
        configs.load_config("fit", FitConfig, user, ["stages.mine.weights.a=-1"])
    with pytest.raises(ConfigError, match="unknown config key 'stages.mine.typo'"):
        configs.load_config("fit", FitConfig, user, ["stages.mine.typo=1"])
    with pytest.raises(
        ConfigError, match="override 'stages.new.free=.pose.': stages.new.max_iter, stages.new.weights not set"
    ):
        load_config(None, ["stages.new.free=[pose]"])  # a new entry gives every key


@dataclass
class TooSmall:
    name: str


@dataclass
class TooBig(VPoserTraining):
    extra: int


def test_every_packaged_config_matches_its_schema_key_for_key():
    schemas = {
        "fit": FitConfig,
        "train_prior": VPoserTraining,
        "train_initialiser": InitialiserTraining,
        "train_temporal_lifter": LifterTraining,
    }
    assert {p.name.removesuffix(".yaml") for p in files("configs").iterdir() if p.name.endswith(".yaml")} == set(
        schemas
    )
    for name, schema in schemas.items():
        cfg = configs.load_config(name, schema)  # a key the YAML lacks or the schema lacks fails
        assert OmegaConf.get_type(cfg) is schema and not OmegaConf.missing_keys(cfg)
    with pytest.raises(ConfigError, match="train_prior.yaml: key 'out_dir' is not in the schema TooSmall"):
        configs.load_config("train_prior", TooSmall)
    with pytest.raises(ConfigError, match=r"train_prior.yaml lacks extra \(keys of TooBig\)"):
        configs.load_config("train_prior", TooBig)


def test_a_misspelt_key_is_refused_with_the_closest_one():
    with pytest.raises(ConfigError, match="'optimizer.max_itr' .*: did you mean 'optimizer.max_iter'"):
        load_config(None, ["optimizer.max_itr=3"])


def test_interpolations_are_resolved_after_all_layers(tmp_path):
    cfg = load_train_config(overrides=["name=mine"])
    assert cfg.out_dir == "out/prior/mine"
    with pytest.raises(ConfigError, match="override 'name=\\${nowhere}': name cannot be resolved"):
        load_train_config(overrides=["name=${nowhere}"])


def test_save_config_round_trips(tmp_path):
    cfg = load_config(None, ["camera.focal=[800,820]", "threads=3"])
    save_config(cfg, tmp_path / "out" / "config.yaml")
    assert load_config(tmp_path / "out" / "config.yaml") == cfg
    train = load_train_config(overrides=["name=x", "data.fps=10"])
    save_config(train, tmp_path / "train.yaml")
    assert OmegaConf.load(tmp_path / "train.yaml") == train
    assert load_train_config(tmp_path / "train.yaml") == train


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lr=0", "train.lr must be > 0"),
        ("train.batch_size=0", "train.batch_size must be >= 1"),
        ("loss.kl=-1", "loss.kl must be >= 0"),
        ("train.precision=15", "train.precision must be one of 32-true, .*, got 15"),
        ("train.accelerator=quantum", "train.accelerator must be one of auto, cpu, .*, got 'quantum'"),
        ("data.val_subjects=[cmu/01,[2]]", r"data.val_subjects.1 must be a string, got \[2\]"),
    ],
)
def test_train_config_checks_its_values(override, message):
    with pytest.raises(ConfigError, match=message):
        load_train_config(overrides=[override])


def test_train_config_takes_good_values():
    cfg = load_train_config(overrides=["train.devices=2", "train.max_minutes=null", "data.val_subjects=[cmu/01]"])
    assert cfg.train.devices == 2 and cfg.train.max_minutes is None and cfg.data.fps == 30.0


def test_evaluate_applies_overrides_to_the_whole_training_config(capsys):
    cfg = checkpoint_config(None, ["data.fps=10"])
    assert cfg.data.fps == 10.0 and cfg.name == "default"  # the shipped checkpoint's .yaml is the user layer
    with pytest.raises(ConfigError, match="unknown config key 'data.fsp'"):
        checkpoint_config(None, ["data.fsp=10"])
    with pytest.raises(SystemExit):
        evaluate_main(["train.nonexistent=1"])
    assert "unknown config key 'train.nonexistent'" in capsys.readouterr().err


def test_evaluate_reads_a_training_runs_own_config(tmp_path):
    """The weights inside a prior.vposer.train folder are measured on that run's data, not the defaults."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "vposer.pt").write_bytes(b"")
    (run / "config.yaml").write_text("name: mine\ndata:\n  fps: 12.0\n  max_actor_poses: 3000\n")
    assert checkpoint_config(run / "vposer.pt").name != "mine"  # not a finished run: no metrics yet
    (run / "train_metrics.json").write_text("{}")
    (run / "other.pt").write_bytes(b"")
    assert checkpoint_config(run / "other.pt").name != "mine"  # not the run's weights
    for path in (run / "vposer.pt", run):
        cfg = checkpoint_config(path)
        assert cfg.name == "mine" and cfg.data.fps == 12.0 and cfg.data.max_actor_poses == 3000
    (run / "vposer.yaml").write_text("name: exported\n")  # an exported checkpoint's own .yaml comes first
    assert checkpoint_config(run / "vposer.pt").name == "exported"
