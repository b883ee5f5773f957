#!/usr/bin/env bash
# Build (or check) the project environment in .venv/ -- `make install`.
#
# Idempotent: when .venv/ already matches requirements/ (a stamp holds their
# hash) it returns at once. mmcv 2.1.0 has no wheel for this Python/torch, so
# it is built from source with its C++ ops (12 min on 2 idle cores); the built
# wheel is cached outside the repository under a key made of the mmcv, torch
# and Python versions, so it is reused by later clones on the same machine but
# never against a different torch.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
CACHE=${DISALIGN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/disalign_mm}
MMCV_VERSION=2.1.0
STAMP="$VENV/.disalign_mm-env"

want=$(cat requirements/*.txt setup.py tools/setup_env.sh | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  echo "[setup_env] $VENV is up to date ($want)"
  exit 0
fi

log() { echo "[setup_env $(date +%H:%M:%S)] $*"; }
[ -x "$VENV/bin/python" ] || { log "creating $VENV with $PYTHON"; "$PYTHON" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

log "base tools, torch, torchvision, setuptools<82"
"${PIP[@]}" install -q --upgrade pip wheel
# what the mmcv build needs first: torch (its headers) and a setuptools that
# still has pkg_resources; the same pins as requirements/*.txt
"${PIP[@]}" install -q -r requirements/runtime.txt -c requirements/mminstall.txt \
  torchvision setuptools

torch_version=$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')
py_tag=$("$VENV/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
wheel_dir="$CACHE/wheels/mmcv-$MMCV_VERSION-cxx20-torch-$torch_version-$py_tag"
if ! ls "$wheel_dir"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
  log "building mmcv $MMCV_VERSION with ops against torch $torch_version (12 minutes on 2 idle cores)"
  tmp="$wheel_dir.partial.$$"
  rm -rf "$tmp"; mkdir -p "$tmp/src"
  "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation \
    -d "$tmp/src" "mmcv==$MMCV_VERSION"
  tar -xzf "$tmp/src/mmcv-$MMCV_VERSION.tar.gz" -C "$tmp/src"
  # torch >= 2.8 headers need C++20; mmcv 2.1.0's setup.py forces -std=c++14/17
  # for the C++ ops (gcc 12 builds them fine as C++20).
  sed -i 's/-std=c++1[47]/-std=c++20/g' "$tmp/src/mmcv-$MMCV_VERSION/setup.py"
  # --no-cache-dir: pip's own wheel cache does not know which torch a build
  # was made against; ours (the directory name) does.
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} "${PIP[@]}" wheel --no-build-isolation \
    --no-deps --no-cache-dir -w "$tmp" "$tmp/src/mmcv-$MMCV_VERSION"
  rm -rf "$tmp/src" "$wheel_dir"; mv "$tmp" "$wheel_dir"
else
  log "reusing the mmcv wheel built against torch $torch_version: $wheel_dir"
fi
"${PIP[@]}" install -q "$wheel_dir"/mmcv-"$MMCV_VERSION"-*.whl

log "OpenMMLab stack and test tools (requirements/mminstall.txt, tests.txt, optional.txt)"
"${PIP[@]}" install -q -r requirements/runtime.txt -r requirements/mminstall.txt \
  -r requirements/tests.txt -r requirements/optional.txt
log "disalign_mm (editable)"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e .
"$VENV/bin/python" -m disalign_mm.mim_scope
"$VENV/bin/python" -c 'import mmcv.ops, mmdet, mmseg, mmpretrain, disalign_mm; print("[setup_env] stack imports:", mmcv.__version__, mmdet.__version__, mmseg.__version__, mmpretrain.__version__)'
echo "$want" > "$STAMP"
log "done"
