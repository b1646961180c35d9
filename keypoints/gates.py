"""Sanity gates on one MediaPipe-33 skeleton: `skeleton_problem` returns why a
skeleton cannot be one person (None when it passes).

Only confident points (score >= MIN_SCORE) are used, and only the 13 core points
(nose, shoulders, elbows, wrists, hips, knees, ankles), and with `image_size`
only points inside the image (MediaPipe guesses a portrait's off-image legs,
sometimes with scores above 0.5). Lengths are 2D pixels: MediaPipe's relative
depth z was tried and made real skeletons look worse (thigh/shin 0.5 in 3D vs
1.3 in 2D on basketball1.png). A projection only shortens a segment (a forearm
pointing at the camera can be a fifth of its upper arm), so a ratio rule also
asks that the longer segment be longer than the torso: a chimera's segment
that bridges two people is both.

- two_people: the points are split between two person boxes (from the person
  finder) that do not hold them together: no box (grown by 10 %) holds 75 % of
  them, and two boxes (IoU < 0.5) each hold 25 % that the other does not.
  MediaPipe's chimera of adjacent people (head and arms of one, legs of the
  other) looks exactly like this.
- limb_ratio: upper arm vs forearm or thigh vs shin of one side differ by more
  than LIMB_RATIO (adults: ~1.1-1.3 in 3D; 0.4-1.7 in 2D on the shared photos)
  and the longer is longer than LONG x the torso (shoulder-hip midpoints, or
  1.2 x the shoulder width when larger; adults: arm segments ~0.6, leg
  segments ~0.9 of the torso).
- side_ratio: a segment and its left/right counterpart differ by more than
  SIDE_RATIO, with the same length condition.
- torso_crossed: the shoulder line and the hip line point opposite ways across
  the torso axis while both are wider than 30 % of the torso (a twist of more
  than ~120 degrees, which a spine cannot make).
- torso_inverted: along the axis from the knees/ankles to the nose, the
  shoulders lie below the hips by more than 20 % of that axis.
- torso_stretched: with two or more leg segments seen, the torso is longer
  than TORSO_RATIO times the longest limb segment (real people on the shared
  photos: 1.5; a thigh or shin is ~0.9 of the torso, so even with one leg
  foreshortened the other keeps the ratio under ~1.5). The shoulders of one
  person over the hips of a neighbour stretch the torso across the gap
  (basketball1.png's man over a copy of his legs 230 px right: 3.1).
The longer segment of a compared pair must be at least 8 % of the skeleton's
size, so that a few pixels of noise on a tiny or cut-off person decide nothing.

`same_person` tells when two skeletons of one image are one person found twice
(e.g. from two person boxes on the same man): SAME_SHARE of the points confident
in both lie within SAME_DIST x the larger skeleton's size of each other (left and
right swapped too), or their heads do (two or more head points confident in both:
two people cannot share a head, and a duplicate often differs only in the body).
On the labelled photos a duplicate on zidane.jpg had 65 % of its points and its
head on the other skeleton; distinct people, even overlapping ones, at most 25 %
and never the head.
"""

from __future__ import annotations

import numpy as np

from body.keypoint_sets import MEDIAPIPE33
from body.skeleton import mirrored_name

MIN_SCORE = 0.5
LIMB_RATIO = 3.0
SIDE_RATIO = 3.0
LONG = 1.0
TORSO_RATIO = 2.5
MIN_SEGMENT = 0.08  # of the skeleton's size (longer side of its core points' box)
BOX_HOLDS = 0.75
BOX_SHARE = 0.25
SAME_DIST = 0.1
SAME_SHARE = 0.5

NOSE, L_SH, R_SH, L_EL, R_EL, L_WR, R_WR = 0, 11, 12, 13, 14, 15, 16
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANK, R_ANK = 23, 24, 25, 26, 27, 28
CORE = (NOSE, L_SH, R_SH, L_EL, R_EL, L_WR, R_WR, L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANK, R_ANK)
SEGMENTS = {  # name: (left (a, b), right (a, b))
    "upper arm": ((L_SH, L_EL), (R_SH, R_EL)),
    "forearm": ((L_EL, L_WR), (R_EL, R_WR)),
    "thigh": ((L_HIP, L_KNEE), (R_HIP, R_KNEE)),
    "shin": ((L_KNEE, L_ANK), (R_KNEE, R_ANK)),
}
LIMBS = (("upper arm", "forearm"), ("thigh", "shin"))
HEAD = tuple(range(11))  # nose, eyes, ears, mouth
# Each mediapipe33 point's left/right counterpart (itself for the nose).
MIRROR = tuple(MEDIAPIPE33.index(mirrored_name(n)) for n in MEDIAPIPE33)


def skeleton_problem(
    body: np.ndarray,
    boxes: np.ndarray | None = None,
    image_size: tuple[int, int] | None = None,
    min_score: float = MIN_SCORE,
) -> str | None:
    """Why this (33, 3) mediapipe33 skeleton (x, y, score in pixels) is not one
    plausible person, or None. `boxes`: (N, 4+) person boxes x0, y0, x1, y1 from
    a person finder; `image_size`: (width, height); `min_score`: the least score
    of a point that is judged."""
    body = np.asarray(body, np.float64)
    ok = body[:, 2] >= min_score
    if image_size is not None:
        w, h = image_size
        ok &= (body[:, 0] >= 0) & (body[:, 0] < w) & (body[:, 1] >= 0) & (body[:, 1] < h)
    pts = body[:, :2]
    core = [i for i in CORE if ok[i]]
    if len(core) < 4:
        return None  # too little seen to judge
    xy = body[core, :2]
    size = float((xy.max(0) - xy.min(0)).max())
    if size <= 0:
        return None

    if boxes is not None and len(boxes) >= 2:
        why = _two_people(xy, np.asarray(boxes, np.float64)[:, :4])
        if why:
            return why

    def length(a: int, b: int) -> float | None:
        return float(np.linalg.norm(pts[a] - pts[b])) if ok[a] and ok[b] else None

    ref = 0.0  # torso length
    if ok[[L_SH, R_SH]].all():
        ref = 1.2 * float(np.linalg.norm(pts[L_SH] - pts[R_SH]))
        if ok[[L_HIP, R_HIP]].all():
            ref = max(ref, float(np.linalg.norm(pts[[L_SH, R_SH]].mean(0) - pts[[L_HIP, R_HIP]].mean(0))))

    def too_different(p: float | None, q: float | None, limit: float) -> float | None:
        if p is None or q is None or max(p, q) < max(MIN_SEGMENT * size, LONG * ref):
            return None
        ratio = max(p, q) / max(min(p, q), 1e-6)
        return ratio if ratio > limit else None

    seg = {(name, side): length(*pair) for name, pairs in SEGMENTS.items() for side, pair in zip("LR", pairs)}
    for upper, lower in LIMBS:
        for side in "LR":
            r = too_different(seg[upper, side], seg[lower, side], LIMB_RATIO)
            if r:
                which = "left" if side == "L" else "right"
                return f"limb_ratio: {which} {upper} and {lower} lengths differ {r:.1f}x (> {LIMB_RATIO:g})"
    for name in SEGMENTS:
        r = too_different(seg[name, "L"], seg[name, "R"], SIDE_RATIO)
        if r:
            return f"side_ratio: left and right {name} lengths differ {r:.1f}x (> {SIDE_RATIO:g})"

    if ok[[L_SH, R_SH, L_HIP, R_HIP]].all():
        why = _torso(body[:, :2], seg, ok)
        if why:
            return why
    return None


def _two_people(xy: np.ndarray, boxes: np.ndarray) -> str | None:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    grown = boxes + 0.1 * np.column_stack([-w, -h, w, h])
    inside = (
        (xy[:, None, 0] >= grown[None, :, 0])
        & (xy[:, None, 0] <= grown[None, :, 2])
        & (xy[:, None, 1] >= grown[None, :, 1])
        & (xy[:, None, 1] <= grown[None, :, 3])
    )  # (points, boxes)
    if inside.mean(0).max() >= BOX_HOLDS:
        return None
    from .types import box_iou

    iou = box_iou(boxes, boxes)
    n = len(boxes)
    for i in range(n):
        for j in range(i + 1, n):
            only_i = (inside[:, i] & ~inside[:, j]).mean()
            only_j = (inside[:, j] & ~inside[:, i]).mean()
            if iou[i, j] < 0.5 and only_i >= BOX_SHARE and only_j >= BOX_SHARE:
                return (
                    f"two_people: points split between person boxes {_fmt(boxes[i])} ({only_i:.0%})"
                    f" and {_fmt(boxes[j])} ({only_j:.0%})"
                )
    return None


def _fmt(box: np.ndarray) -> str:
    return "(" + ",".join(f"{v:.0f}" for v in box[:4]) + ")"


def _torso(xy: np.ndarray, seg: dict, ok: np.ndarray) -> str | None:
    sh_mid, hip_mid = (xy[L_SH] + xy[R_SH]) / 2, (xy[L_HIP] + xy[R_HIP]) / 2
    axis = sh_mid - hip_mid
    torso = float(np.linalg.norm(axis))
    sh_w = float(np.linalg.norm(xy[R_SH] - xy[L_SH]))
    hip_w = float(np.linalg.norm(xy[R_HIP] - xy[L_HIP]))
    if torso > 0:

        def cross(v: np.ndarray) -> float:
            return float(axis[0] * v[1] - axis[1] * v[0])

        if cross(xy[R_SH] - xy[L_SH]) * cross(xy[R_HIP] - xy[L_HIP]) < 0 and min(sh_w, hip_w) > 0.3 * torso:
            return f"torso_crossed: shoulder and hip lines point opposite ways (widths {sh_w:.0f}, {hip_w:.0f} px)"
        limbs = [v for v in seg.values() if v is not None]
        legs_seen = sum(seg[n, side] is not None for n in ("thigh", "shin") for side in "LR")
        if legs_seen >= 2 and torso > TORSO_RATIO * max(limbs):
            return f"torso_stretched: torso {torso:.0f} px, longest limb segment {max(limbs):.0f} px"
    legs = [i for i in (L_KNEE, R_KNEE, L_ANK, R_ANK) if ok[i]]
    if ok[NOSE] and legs:
        base = xy[legs].mean(0)
        up = xy[NOSE] - base
        span = float(up @ up)
        if span > 0:

            def t(p: np.ndarray) -> float:
                return float((p - base) @ up) / span

            if t(sh_mid) < t(hip_mid) - 0.2:
                return "torso_inverted: shoulders below hips along the legs-to-nose axis"
    return None


def same_person(a: np.ndarray, b: np.ndarray, min_score: float = MIN_SCORE) -> str | None:
    """Why two (33, 3) mediapipe33 skeletons of one image are the same person found
    twice (see the module docstring), or None; points under `min_score` are not compared."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok_a, ok_b = a[:, 2] >= min_score, b[:, 2] >= min_score
    if ok_a.sum() < 2 or ok_b.sum() < 2:
        return None
    near = SAME_DIST * max(float(np.ptp(x[ok, :2], 0).max()) for x, ok in ((a, ok_a), (b, ok_b)))
    best, common = 0.0, 0
    for order in (np.arange(len(b)), np.array(MIRROR)):
        both = ok_a & ok_b[order]
        if both.sum() >= 2:
            hit = np.linalg.norm(a[both, :2] - b[order][both, :2], axis=1) <= near
            if hit.mean() > best:
                best, common = float(hit.mean()), int(both.sum())
    if best >= SAME_SHARE:
        return f"same_person: {best:.0%} of {common} points within {near:.0f} px of another skeleton"
    head = [i for i in HEAD if ok_a[i] and ok_b[i]]
    if len(head) >= 2 and np.linalg.norm(a[head, :2] - b[head, :2], axis=1).mean() <= near:
        return f"same_person: {len(head)} head points within {near:.0f} px of another skeleton's"
    return None
