"""Build Anny's model cache once (`python -m body.build_cache`), so later loads take < 1 s."""

from __future__ import annotations

import time


def main() -> None:
    start = time.time()
    import body

    model = body.create("anny")
    print(
        f"Anny ready: {model.faces.shape[0]} faces, {len(model.joint_names)} joints "
        f"({time.time() - start:.1f} s; cache in ANNY_CACHE_DIR or ~/.cache/anny)"
    )


if __name__ == "__main__":
    main()
