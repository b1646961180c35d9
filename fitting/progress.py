"""The progress bar of a run's frames: frames done of all, frames/s and the time left."""

from __future__ import annotations

from tqdm import tqdm

# Frames per second even below one (tqdm's default turns a slow rate into s/frame); the rate is the
# mean since the start (smoothing=0): frames arrive a batch or a window at a time, so a moving
# average would swing with every batch.
BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} frames [{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]"
)


class FrameBar(tqdm):
    """A bar over `total` frames (None: unknown) that shows frames/s and the time left."""

    def __init__(self, total: int | None, desc: str, enabled: bool, leave: bool = True) -> None:
        super().__init__(
            total=total, desc=desc, unit="frame", bar_format=BAR_FORMAT, smoothing=0, leave=leave, disable=not enabled
        )
        self.done_before = 0

    def already_done(self) -> None:
        """Take a frame an earlier run fitted out of the bar (it costs nothing here, so counting it
        would inflate frames/s and shorten the time left); the postfix counts them."""
        self.done_before += 1
        self.total -= 1
        self.set_postfix_str(f"{self.done_before} already done")
