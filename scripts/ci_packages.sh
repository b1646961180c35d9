#!/usr/bin/env bash
# Optional system packages for the checks that run real clients (issue 26): Chromium
# (tests/test_fitting_report.py opens a run report headless) and Blender with
# python3-numpy (tests/test_fitting_export.py's BVH/GLB round trip). Installs the missing
# ones with apt-get when it can (root, or sudo without a password) and says how long it
# took (Debian 12: chromium about 50 s, blender and python3-numpy about 35 s). Otherwise
# it prints a NOTICE and exits 0: those tests then skip, saying why.
set -uo pipefail
want=()
command -v chromium >/dev/null || want+=(chromium)
command -v blender >/dev/null || want+=(blender)
dpkg -s python3-numpy >/dev/null 2>&1 || want+=(python3-numpy)
if [ ${#want[@]} -eq 0 ]; then
    echo "ci packages: chromium, blender and python3-numpy are installed"
    exit 0
fi
notice() {
    echo "NOTICE: ${want[*]} not installed ($1); the report's Chromium check and the Blender round trip skip" >&2
    exit 0
}
command -v apt-get >/dev/null || notice "no apt-get"
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    notice "not root and no sudo without a password"
fi
log=$(mktemp)
start=$SECONDS
if "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$log" 2>&1 &&
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${want[@]}" >>"$log" 2>&1; then
    echo "ci packages: installed ${want[*]} in $((SECONDS - start)) s"
    rm -f "$log"
else
    tail -n 3 "$log" >&2
    rm -f "$log"
    notice "apt-get failed after $((SECONDS - start)) s"
fi
