"""A run's report page: `DIR/report.html`, opened from the file system with no server.

    python -m fitting.report DIR

It shows the summary's counts, a 3D view of a fitted sequence or frame (three.js,
fitting/report_viewer.py), per video a plot of reprojection error, joint angles and
people per frame with a few overlay thumbnails, and a table of every item (fitted,
skipped or failed with the reason, reprojection error). Thumbnails and plots go to
`DIR/report_files/`. See docs/report.md.
"""

from __future__ import annotations

import argparse
import html
import math
import re
import sys
from datetime import datetime
from pathlib import Path

from configs.files import write_text
from fitting.outputs import frame_paths
from fitting.report_items import Item, ReportError, detections, load_items, read_summary
from fitting.report_plots import thumbnail, video_plot
from fitting.report_viewer import viewer_section
from keypoints.files import VIDEO_SUFFIXES

FILES = "report_files"
VIDEO_THUMBS = 6  # overlay thumbnails per video, spread over its fitted frames
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #1d232a; padding: 0 16px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; } h2 small { font-weight: normal; font-size: 13px; }
table { border-collapse: collapse; } td, th { padding: 4px 10px; border-bottom: 1px solid #dde1e5; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.counts td { font-size: 16px; } .note { color: #5b6570; }
.fitted, .already_done { color: #19713a; } .skipped { color: #8a6100; } .failed { color: #b3261e; font-weight: 600; }
#viewer canvas { width: 100%; height: 520px; display: block; border-radius: 6px; background: #20262e; }
.thumbs img { margin: 0 6px 6px 0; border: 1px solid #dde1e5; } img.thumb { max-height: 90px; }
"""


def write_report(out_dir: Path) -> Path:
    """Write `out_dir/report.html` (atomically) and its pictures in `out_dir/report_files/`; the page's path.
    Raises ReportError (one line) when `out_dir` is no folder or its summary.json is unreadable."""
    out_dir = Path(out_dir)
    summary = read_summary(out_dir)
    items = load_items(out_dir, summary)
    files = out_dir / FILES
    thumbs = _thumbnails(out_dir, files, items)
    videos: dict[str, list[Item]] = {}
    for item in items:
        if item.video:
            videos.setdefault(item.video, []).append(item)
    singles = [i for i in items if not i.video]
    body = [
        f"<h1>Run report: {html.escape(out_dir.resolve().name)}</h1>",
        f'<p class="note">{html.escape(str(out_dir.resolve()))}, written {datetime.now():%Y-%m-%d %H:%M}</p>',
        _counts(summary, items),
        viewer_section(out_dir, files),
        *(_video(out_dir, files, name, frames, thumbs) for name, frames in videos.items()),
    ]
    if singles or not videos:
        body.append("<h2>Items</h2>")
        body.append(_table(singles, thumbs) if singles else '<p class="note">No items: this run had no inputs.</p>')
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>bodyfit report: {html.escape(out_dir.resolve().name)}</title><style>{STYLE}</style></head>\n"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    path = out_dir / "report.html"
    write_text(path, page)
    return path


def _thumbnails(out_dir: Path, files: Path, items: list[Item]) -> dict[str, str]:
    """Frame key -> its thumbnail's path from the page, for single images and a few frames per video."""
    frames = list(dict.fromkeys(i.frame for i in items if not i.video))
    by_video: dict[str, list[str]] = {}
    for item in items:
        if item.video and item.done:
            by_video.setdefault(item.video, []).append(item.frame)
    for keys in by_video.values():
        keys = list(dict.fromkeys(keys))
        step = max(1, math.ceil(len(keys) / VIDEO_THUMBS))
        frames += keys[::step][:VIDEO_THUMBS]
    thumbs = {}
    for key in frames:
        overlay = frame_paths(out_dir, key)["png"]
        if overlay.is_file():
            name = f"thumbs/{re.sub(r'[^A-Za-z0-9._-]', '_', key)}.jpg"
            thumbnail(overlay, files / name)
            thumbs[key] = f"{FILES}/{name}"
    return thumbs


def _counts(summary: dict, items: list[Item]) -> str:
    """The summary's counts, people and run time, and the items' mean reprojection error."""
    counts, people = summary.get("counts", {}), summary.get("people") or {}
    cells = [(k.replace("_", " "), counts.get(k, 0), k) for k in ("fitted", "already_done", "skipped", "failed")]
    rows = ["<tr>" + "".join(f'<th class="{cls}">{label}</th>' for label, _, cls in cells) + "</tr>"]
    rows.append("<tr>" + "".join(f'<td class="num">{n}</td>' for _, n, _ in cells) + "</tr>")
    lines = []
    if people.get("most_in_a_frame", 0) > 1:
        lines.append(
            f"People: {people['fitted'] + people['already_done']} fitted in {people['frames']} frames (up to "
            f"{people['most_in_a_frame']} in one), {people['skipped'] + people['failed']} not fitted."
        )
    px = [i.px for i in items if math.isfinite(i.px)]
    rel = [i.rel for i in items if math.isfinite(i.rel)]
    if px and rel:
        lines.append(
            f"Mean reprojection error over the {len(px)} fits (this run's and those already done): "
            f"{sum(px) / len(px):.2f} px ({100 * sum(rel) / len(rel):.2f} % of the person's height)."
        )
    if "seconds" in summary:
        lines.append(f"Run time {summary['seconds']:.1f} s.")
    text = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return f'<h2>Summary</h2><table class="counts">{"".join(rows)}</table>{text}'


def _video(out_dir: Path, files: Path, name: str, frames: list[Item], thumbs: dict[str, str]) -> str:
    """A video's (or sequence's) section: counts, per-frame plot, thumbnails, links to its files, frames' table."""
    plot = f"plots/{re.sub(r'[^A-Za-z0-9._-]', '_', name)}.png"
    video_plot(files / plot, frames, detections(out_dir, name))
    done = sum(f.done for f in frames)
    kind = "Video" if Path(name).suffix.lower() in VIDEO_SUFFIXES else "Sequence"
    links = [
        f'<a href="{html.escape(f"{name}/{f}")}">{f}</a>'
        for f in ("overlay.mp4", "motion.glb", "motion.bvh")
        if (out_dir / name / f).is_file()
    ]
    shown = "".join(
        f'<a href="{html.escape(k)}.overlay.png"><img src="{src}" alt="{html.escape(k)}"></a>'
        for k, src in thumbs.items()
        if k.startswith(f"{name}/")
    )
    return (
        f"<h2>{kind} {html.escape(name)} <small>{done} fitted, {len(frames) - done} skipped or failed"
        f"{' &middot; ' + ' &middot; '.join(links) if links else ''}</small></h2>"
        f'<p><img src="{FILES}/{plot}" alt="per-frame plots of {html.escape(name)}"></p>'
        f'<p class="thumbs">{shown}</p>'
        f"<details><summary>Frames ({len(frames)})</summary>{_table(frames, {})}</details>"
    )


def _table(items: list[Item], thumbs: dict[str, str]) -> str:
    """Rows of items: overlay thumbnail, key, status, reason, reprojection error."""
    rows = []
    for item in items:
        picture = thumbs.get(item.frame)
        cell = f'<img class="thumb" src="{picture}" alt="">' if picture else ""
        px = f"{item.px:.2f}" if math.isfinite(item.px) else ""
        rel = f"{100 * item.rel:.2f}" if math.isfinite(item.rel) else ""
        rows.append(
            f"<tr><td>{cell}</td><td>{html.escape(item.key)}</td>"
            f'<td class="{item.status}">{item.status.replace("_", " ")}</td><td>{html.escape(item.reason)}</td>'
            f'<td class="num">{px}</td><td class="num">{rel}</td></tr>'
        )
    head = "<tr><th></th><th>item</th><th>status</th><th>reason</th><th>reprojection px</th><th>% of height</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fitting.report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path, help="output folder of a run_fit.py run")
    args = parser.parse_args(argv)
    try:
        print(write_report(args.folder))
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
