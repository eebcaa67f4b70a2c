#!/usr/bin/env bash
# The README's first command: set up, process the bundled demo calls with the
# bundled script and model into SQLite (with demo CRM outcomes and reviews),
# then serve the review app on http://127.0.0.1:8501.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
bash scripts/demo-data.sh
echo "==> review app on http://127.0.0.1:8501  (demo logins above, kept in data/demo-logins.txt)"
exec .venv/bin/callreview serve --host 127.0.0.1 --port 8501
