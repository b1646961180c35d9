"""What the dataset builder knows about each mocap archive: licence, attribution and actors.

`actor_of(dataset, clip)` names the performer of a clip, the unit of the train/validation split
(never frames) and of source balancing. CMU subjects keep one name across archives ("cmu/16"
for CMU subject 16 whether it comes as ASF/AMC, Daz BVH or an SNU segment), so one subject
never lands on both sides. Unknown archives fall back to "<dataset>/<folder>".
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

_CMU_TERMS = (
    "CMU Graphics Lab Motion Capture Database: free for use in research and commercial projects worldwide "
    "(no direct resale, even converted)"
)
_CMU_THANKS = "The data used in this project was obtained from mocap.cs.cmu.edu. The database was created with funding from NSF EIA-0196217."  # noqa: E501
_CGSPEED = "BVH conversion by Bruce Hahne (cgspeed), who places no additional restrictions on it."
_HDM05 = (
    "M. Müller, T. Röder, M. Clausen, B. Eberhardt, B. Krüger, A. Weber: "
    "Documentation Mocap Database HDM05, Universität Bonn, Tech. Rep. CG-2007-2, 2007."
)

# archive name -> (licence, attribution). The archives' LICENSE-or-SOURCE.txt files, where
# present, are copied into the manifest as well.
ARCHIVES: dict[str, tuple[str, str]] = {
    "cmu_asfamc": (_CMU_TERMS, f"CMU subjects 01, 02 (ASF/AMC). {_CMU_THANKS}"),
    "cmu_bvh": (_CMU_TERMS, f"CMU salsa, Indian dance, martial arts clips. {_CGSPEED} {_CMU_THANKS}"),
    "cmu_daz_more_bvh": (
        _CMU_TERMS,
        f"CMU subjects 10, 12-14, 16 via github.com/Przestr/motion-capture (c200c31). {_CGSPEED} {_CMU_THANKS}",
    ),
    "cmu_gait_asfamc": (
        _CMU_TERMS,
        "CMU subjects 16, 32, 35, 38, 39, 43, 49, 55 (trimmed gait cycles) via "
        f"github.com/KseniiaCheloshkina/amc (cc0ee08). {_CMU_THANKS}",
    ),
    "cmu_mbstyle_bvh": (
        _CMU_TERMS,
        f"CMU subjects 05-09 via github.com/chrystianosaraujo/motion-viewer (6d7ca60). {_CGSPEED} {_CMU_THANKS}",
    ),
    "cmu_maxstyle_bvh": (
        f"{_CMU_TERMS}; repository MIT",
        "CMU subject 131 via github.com/yuki-koyama/bvh11 (c907217, MIT License, Copyright (c) 2018 Yuki Koyama). "
        f"{_CGSPEED} {_CMU_THANKS}",
    ),
    "hdm05_asfamc": ("CC BY-SA 3.0", _HDM05),
    "snu_basketball_bvh": (
        "Apache-2.0 (CMU 16 segments: CMU terms)",
        "SNU Motion Database basketball via github.com/snumrl/VSports (c35bc82, Apache License 2.0, Copyright 2020 "
        f"Jehee Lee), Seoul National University Movement Research Lab. CMU subject 16 segments: {_CMU_THANKS}",
    ),
    "snu_interactive_bvh": (
        "Apache-2.0 (CMU 69 clips: CMU terms)",
        "github.com/snumrl/InteractiveAnimation (0027fca, Apache License 2.0, Copyright 2019 Kyungho Lee), "
        "SNU Movement Research Lab: K. Lee, S. Lee, J. Lee, Interactive Character Animation by Learning "
        f"Multi-Objective Control, SIGGRAPH Asia 2018. CMU subject 69 retargeted by SNU: {_CMU_THANKS}",
    ),
    "snu_martial_bvh": (
        "BSD-3-Clause (CMU 16 segment: CMU terms)",
        "github.com/snumrl/TimeCriticalResponse (11f8592, BSD 3-Clause, (c) 2020 NCSOFT Corporation & SNU R&D "
        "Foundation): K. Lee, S. Min, S. Lee, J. Lee, Learning Time-Critical Responses for Interactive Character "
        f"Control, SIGGRAPH 2021; SNU Motion Database martial arts. CMU subject 16 segment: {_CMU_THANKS}",
    ),
    "snu_woody2_bvh": (
        "Apache-2.0 (Walking/: also MIT)",
        "github.com/snumrl/ys2010 (02ae02a, Apache License 2.0, Copyright 2019 Jehee Lee): Y. Lee, S. Kim, J. Lee, "
        "Data-Driven Biped Control, SIGGRAPH 2010, SNU Movement Research Lab; Walking/ also in "
        "github.com/snumrl/DataDrivenBipedController (MIT License, Copyright Yoonsang Lee 2013).",
    ),
    "fair_bvh": (
        "MIT (cmu1 clip: CMU terms)",
        "github.com/facebookresearch/AnimatedDrawings (74ee7f0, MIT License, Meta Platforms), "
        f"fair1 actor clips; one CMU clip (jumping jacks): {_CMU_THANKS}",
    ),
    "reactidle_bvh": (
        "MIT",
        "ReActIdle via github.com/Enekoassets/ReActIdle (90b0ac7, MIT License, Copyright (c) 2025 RSAIT): "
        "E. Atxa Landa, E. Lazkano, I. Rodriguez, I. Rodriguez-Moreno, I. Irigoien, Evaluating Idle Animation "
        "Believability: a User Perspective, arXiv:2509.05023, 2025.",
    ),
}
_FALLBACK: tuple[tuple[str, tuple[str, str]], ...] = (
    ("hdm05", ("CC BY-SA 3.0", _HDM05)),
    ("cmu", (_CMU_TERMS, _CMU_THANKS)),
    (
        "amass",
        (
            "AMASS and its sub-datasets: see amass.is.tue.mpg.de (research licences)",
            "Mahmood et al., AMASS, ICCV 2019.",
        ),
    ),  # noqa: E501
)


def licence_for(dataset: str) -> dict[str, str]:
    """Licence and attribution of a dataset, by archive name or a known word in it (unknown ones
    say so)."""
    if dataset in ARCHIVES:
        licence, attribution = ARCHIVES[dataset]
        return {"licence": licence, "attribution": attribution}
    for key, (licence, attribution) in _FALLBACK:
        if key in dataset.lower():
            return {"licence": licence, "attribution": attribution}
    return {"licence": "unknown: check the source's terms", "attribution": ""}


_CMU_FOLDER = re.compile(r"(?:cmu)?(\d{1,3})(?:_.*)?", re.IGNORECASE)
_SNU_TAKE = re.compile(r"s_(\d+)_(\d+)_(\d+)")


def actor_of(dataset: str, clip: str) -> str:
    """The performer of `clip` (a path relative to the dataset's folder, e.g. "07/07_01.bvh").

    CMU subjects: "cmu/<NN>" in every archive (folders named by subject number, SNU's
    "cmu16_walk_segments", "cmu69_walk"). The SNU woody2 archive is one performer; SNU tennis
    one ("Kang"); SNU basketball and martial-arts takes s_<session>_<take>_<person> capture up
    to four people at once: "<dataset>/p<person>" (the annotation's person index; whether it
    names the same person in every session is not documented). FAIR: "fair/fair1" and the
    unnumbered CMU clip "fair_bvh/cmu1". Else "<dataset>/<first folder>" (HDM05 actors, CMU
    BVH motion folders, AMASS subjects), or "<dataset>" for files at its top.
    """
    parts = PurePosixPath(clip).parts
    folder = parts[0] if len(parts) > 1 else ""
    stem = PurePosixPath(clip).stem
    cmu_archive = dataset.startswith("cmu_") and dataset not in ("cmu_bvh",)
    if (cmu_archive or folder.lower().startswith("cmu")) and (match := _CMU_FOLDER.fullmatch(folder)):
        return f"cmu/{int(match.group(1)):02d}"
    if dataset == "snu_woody2_bvh":
        return "snu/woody2"
    if dataset == "snu_interactive_bvh" and folder == "snu_tennis":
        return "snu/kang"
    if dataset in ("snu_basketball_bvh", "snu_martial_bvh") and (match := _SNU_TAKE.fullmatch(stem)):
        return f"{dataset.removesuffix('_bvh')}/p{int(match.group(3))}"
    if dataset == "reactidle_bvh":  # acted/003_acted.bvh and genuine/003_genuine.bvh: performer 003
        return f"reactidle/{stem.split('_')[0]}"
    if dataset == "fair_bvh":
        return "fair/fair1" if stem.startswith("fair1") else f"fair_bvh/{stem.split('_')[0]}"
    return f"{dataset}/{folder}" if folder else dataset
