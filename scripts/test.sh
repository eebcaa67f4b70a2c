#!/usr/bin/env bash
# The README's second command: set up if needed, then run the whole test suite
# on the real model and real audio (SQLite and a throwaway PostgreSQL server),
# after checking the import layering.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
# The layering contract in pyproject.toml ([tool.importlinter]): stages import
# only the stages below them, only review_app imports Streamlit, no cycles.
.venv/bin/lint-imports --no-logo --no-cache
exec .venv/bin/python -m pytest "$@"
