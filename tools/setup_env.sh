#!/usr/bin/env bash
# Build (or check) a tested stack in its own virtual environment:
#
#   bash tools/setup_env.sh [fork]     -> .venv/           (`make install`)
#   bash tools/setup_env.sh oldest     -> .venv-oldest/    (`make install-oldest`)
#   bash tools/setup_env.sh newest     -> .venv-upstream/  (`make install-upstream`)
#
# fork: the maintained OpenMMLab fork (onedl-*) on torch 2.14.1, the default
# and what CI tests beside oldest: upstream OpenMMLab on torch 2.1.2, the
# oldest supported stack. newest (upstream OpenMMLab built for torch 2.14.1)
# is not tested by CI (docs/install.md says why). VENV=DIR builds a stack
# elsewhere.
#
# A stack is requirements/stack-<name>.txt (exact pins) installed together with
# the ranges the wheel declares for its family (requirements/runtime.txt,
# upstream.txt or fork.txt, tests.txt, optional.txt): pip fails if a pin leaves
# a range. The family (upstream or fork) is read off the pins: a stack that
# pins onedl-mmcv is the fork.
#
# Idempotent: when the venv already matches requirements/ (a stamp holds their
# hash) it returns at once. Neither mmcv 2.1.0 nor onedl-mmcv 2.3.6 has a wheel
# for these Python/torch pairs on the package index, so mmcv is built from
# source with its C++ ops (12-30 minutes on 2 cores); the built wheel is
# cached outside the repository under a key made of the distribution, its
# version, the C++ standard, the torch version and the Python tag, so later
# clones on the same machine reuse it and it is never used against a
# different torch. DISALIGN_CACHE=DIR puts that cache elsewhere (an empty DIR
# measures a cold build).
set -euo pipefail
cd "$(dirname "$0")/.."

STACK=${1:-${STACK:-fork}}
case "$STACK" in
  fork) DEFAULT_VENV=.venv ;;
  oldest) DEFAULT_VENV=.venv-oldest ;;
  newest) DEFAULT_VENV=.venv-upstream ;;
  *) echo "usage: $0 [fork|oldest|newest]" >&2; exit 2 ;;
esac
VENV=${VENV:-$DEFAULT_VENV}
PINS=requirements/stack-$STACK.txt
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
CACHE=${DISALIGN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/disalign_mm}
# the mmcv distribution and version of the stack: `mmcv==X` (upstream) or
# `onedl-mmcv==X` (fork)
read -r MMCV_DIST MMCV_VERSION < <(sed -nE 's/^(mmcv|onedl-mmcv)==([^ #]+).*/\1 \2/p' "$PINS")
[ -n "${MMCV_VERSION:-}" ] || { echo "$PINS pins no mmcv" >&2; exit 2; }
if [ "$MMCV_DIST" = onedl-mmcv ]; then FAMILY=fork; else FAMILY=upstream; fi
MMCV_FILE=${MMCV_DIST//-/_}  # how the sdist and wheel file names spell it
STAMP="$VENV/.disalign_mm-env"

want="$STACK $(cat requirements/{runtime,$FAMILY,tests,optional,docs}.txt "$PINS" setup.py \
  tools/setup_env.sh | sha256sum | cut -c1-16)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  echo "[setup_env] $VENV ($STACK stack) is up to date (${want#* })"
  exit 0
fi

log() { echo "[setup_env $STACK $(date +%H:%M:%S)] $*"; }
# a venv holding another stack is rebuilt from scratch: installing one
# OpenMMLab family over the other leaves two distributions writing the same
# packages (docs/install.md). A stamp without a stack name was written before
# 0.2, when .venv/ held the newest upstream stack and .venv-oldest/ the oldest.
if [ -f "$STAMP" ]; then
  held=$(cut -d' ' -f1 < "$STAMP")
  if [ "$(wc -w < "$STAMP")" -lt 2 ]; then
    case "$(basename "$VENV")" in
      .venv) held=newest ;;
      .venv-oldest) held=oldest ;;
      *) held=unknown ;;
    esac
  fi
  if [ "$held" != "$STACK" ]; then
    log "$VENV holds another stack ($held): removing it"
    rm -rf "$VENV"
  fi
fi
[ -x "$VENV/bin/python" ] || { log "creating $VENV with $PYTHON"; "$PYTHON" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

log "base tools, then torch, torchvision, numpy, setuptools as pinned in $PINS"
"${PIP[@]}" install -q --upgrade pip wheel packaging
# what the mmcv build needs first: torch (its headers), the numpy torch was
# built against, and a setuptools that still has pkg_resources
"${PIP[@]}" install -q -c "$PINS" torch torchvision numpy setuptools

torch_version=$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')
py_tag=$("$VENV/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
# torch >= 2.8 headers need C++20, which neither mmcv 2.1.0's nor onedl-mmcv
# 2.3.6's setup.py knows: they pass -std=c++14 (parrots) / -std=c++17 (torch >
# 1.12), so the newer torch gets a patched setup.py. torch 2.1 headers need
# C++17: mmcv's own choice, unpatched.
cxx=$("$VENV/bin/python" -c 'import torch; v = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]); print("cxx20" if v >= (2, 8) else "cxx17")')
wheel_dir="$CACHE/wheels/$MMCV_DIST-$MMCV_VERSION-$cxx-torch-$torch_version-$py_tag"
if ! ls "$wheel_dir"/"$MMCV_FILE"-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
  log "building $MMCV_DIST $MMCV_VERSION ($cxx) with ops against torch $torch_version (12-30 minutes on 2 cores)"
  build_start=$(date +%s)
  tmp="$wheel_dir.partial.$$"
  rm -rf "$tmp"; mkdir -p "$tmp/src"
  "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation \
    -d "$tmp/src" "$MMCV_DIST==$MMCV_VERSION"
  tar -xzf "$tmp/src/$MMCV_FILE-$MMCV_VERSION.tar.gz" -C "$tmp/src"
  if [ "$cxx" = cxx20 ]; then
    # gcc 12 builds the C++ ops of mmcv 2.1.0 and onedl-mmcv 2.3.6 fine as C++20
    sed -i 's/-std=c++1[47]/-std=c++20/g' "$tmp/src/$MMCV_FILE-$MMCV_VERSION/setup.py"
  fi
  # MMCV_WITH_OPS: mmcv 2.1.0 builds its ops only when asked (onedl-mmcv
  # always does, when torch is importable). --no-build-isolation: the build
  # needs the venv's torch. --no-cache-dir: pip's own wheel cache does not know
  # which torch a build was made against; ours (the directory name) does.
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} "${PIP[@]}" wheel --no-build-isolation \
    --no-deps --no-cache-dir -w "$tmp" "$tmp/src/$MMCV_FILE-$MMCV_VERSION"
  rm -rf "$tmp/src" "$wheel_dir"; mv "$tmp" "$wheel_dir"
  log "built $MMCV_DIST $MMCV_VERSION in $(( $(date +%s) - build_start )) s"
else
  log "reusing the $MMCV_DIST wheel built against torch $torch_version: $wheel_dir"
fi
# -c: the wheel's own requirements (mmengine, opencv-python, ...) as pinned
"${PIP[@]}" install -q -c "$PINS" "$wheel_dir"/"$MMCV_FILE"-"$MMCV_VERSION"-*.whl

log "OpenMMLab stack, test and docs tools: the wheel's ranges (runtime, $FAMILY, tests, optional) and requirements/docs.txt, pinned by $PINS"
"${PIP[@]}" install -q -r requirements/runtime.txt -r requirements/$FAMILY.txt \
  -r requirements/tests.txt -r requirements/optional.txt -r requirements/docs.txt -r "$PINS"
# with the extras a user of this family installs (docs/install.md): on the
# stack just built they must add nothing but disalign_mm (pip check and the
# import check below fail on a distribution of the other family)
log "disalign_mm (editable) with its extras [$FAMILY,tests,optional]"
"${PIP[@]}" install -q --no-build-isolation -c "$PINS" -e ".[$FAMILY,tests,optional]"
"$VENV/bin/python" -m disalign_mm.mim_scope
"${PIP[@]}" check
"$VENV/bin/python" -c 'import torch, numpy, mmcv.ops, mmdet, mmseg, mmpretrain, disalign_mm.engine; print("[setup_env] stack imports: torch", torch.__version__, "numpy", numpy.__version__, "mmcv", mmcv.__version__, "mmdet", mmdet.__version__, "mmseg", mmseg.__version__, "mmpretrain", mmpretrain.__version__)'
echo "$want" > "$STAMP"
log "done"
