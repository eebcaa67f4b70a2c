#!/usr/bin/env bash
# The README's second command: set up if needed, then run the whole test suite
# on the real model and real audio (SQLite and a throwaway PostgreSQL server).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
