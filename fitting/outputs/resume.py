"""Resuming into an output folder: the folder lock, the settings check, and what an earlier run
left of a frame.

Every file is written atomically; a frame's .npz files are written last and record the input
they came from, a digest of the settings that shape a fit and (`frame_people`) which people
the frame wrote and which it could not fit, so a frame counts as done exactly when all its
people's .npz open and match this run (a killed run leaves no partial files and redoes only
frames without them; a run with other settings never counts old frames as its own).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from omegaconf import DictConfig, OmegaConf

from configs.files import pid_alive
from fitting.outputs.npz import read_people_record, saved_stamp
from fitting.outputs.paths import fit_settings, frame_paths, output_key, person_outputs

LOCK_NAME = ".bodyfit.lock"


class OutputError(ValueError):
    """The output folder cannot be used as asked (locked by another run, or fitted with other settings)."""


def check_settings(out_dir: Path, cfg: DictConfig, overwrite: bool) -> None:
    """Refuse a folder whose config.yaml holds other fit settings than `cfg` (unless `overwrite`)."""
    saved = out_dir / "config.yaml"
    if overwrite or not saved.is_file():
        return
    before = fit_settings(OmegaConf.load(saved))
    now = fit_settings(cfg)
    changed = sorted(_changed_keys(before, now))
    if changed:
        raise OutputError(
            f"{out_dir} holds fits made with other settings ({', '.join(changed[:6])}"
            f"{', ...' if len(changed) > 6 else ''} changed); pass --overwrite to refit them, or choose another --out"
        )


def _changed_keys(a: object, b: object, prefix: str = "") -> Iterator[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            yield from _changed_keys(a.get(k), b.get(k), f"{prefix}{k}.")
    elif a != b:
        yield prefix.rstrip(".")


@contextmanager
def folder_lock(out_dir: Path) -> Iterator[None]:
    """Hold `out_dir` for this run: a second run into the same folder is refused while this one lives
    (a lock left by a killed run is taken over)."""
    lock = out_dir / LOCK_NAME
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            try:
                owner = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner and owner != os.getpid() and pid_alive(owner):
                raise OutputError(
                    f"{out_dir} is in use by another run (pid {owner}); wait for it to finish or choose another --out"
                ) from None
            lock.unlink(missing_ok=True)
    else:
        raise OutputError(f"{out_dir}: could not take the folder lock {LOCK_NAME}")
    with os.fdopen(fd, "w") as fh:
        fh.write(str(os.getpid()))
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


@dataclass(frozen=True)
class SavedFrame:
    """A frame an earlier run settled: the output keys of the people it wrote (`done`) and of those
    it skipped or could not fit, with the reasons; or, where it holds a fit of another input or
    with other settings, why it is left as it is (`foreign`)."""

    key: str
    done: tuple[str, ...] = ()
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    foreign: str | None = None


def saved_frame(out_dir: Path, key: str, source: Path, digest: str, overwrite: bool) -> SavedFrame | None:
    """What an earlier run left of frame `key` if it needs no fit now: all its people fitted from
    `source` under settings digest `digest`, or (unless `overwrite`) a fit of another input or
    with other settings, left as it is. None: fit the frame."""
    single = saved_stamp(out_dir, key)
    if single is not None:
        stamps = {key: single}
    else:
        names = [str(Path(key).parent / f.stem) for f in person_outputs(out_dir, key) if f.suffix == ".npz"]
        stamps = {k: stamp for k in names if (stamp := saved_stamp(out_dir, k)) is not None}
    if not stamps:
        return None
    other = next((k for k, v in stamps.items() if (v["input"], v["config_digest"]) != (str(source), digest)), None)
    if other is not None:
        if overwrite:
            return None
        return SavedFrame(
            key,
            foreign=f"{frame_paths(out_dir, other)['npz']} holds a fit of {stamps[other]['input'] or 'another input'} "
            "or with other settings; pass --overwrite to refit it",
        )
    record = read_people_record(next(iter(stamps.values()))["frame_people"])
    written = [output_key(key, int(i), single is None) for i in record["written"]]
    if not set(written) <= set(stamps):
        return None  # a run killed while writing this frame's people: fit it again
    keyed = {
        outcome: {output_key(key, int(i), single is None): r for i, r in record[outcome].items()}
        for outcome in ("skipped", "failed")
    }
    return SavedFrame(key, tuple(written), keyed["skipped"], keyed["failed"])
