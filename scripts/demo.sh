#!/usr/bin/env bash
# The README's first command: set up, process the bundled demo calls with the
# bundled script and model into SQLite, then serve the review app on
# http://127.0.0.1:8501.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
CR=.venv/bin/callreview

$CR init
echo "==> processing the demo calls (data/demo) with checklists/appliances-inbound.yaml"
$CR process data/demo --checklist checklists/appliances-inbound.yaml --metadata data/demo/metadata.csv || true
$CR status
# Demo accounts (a rerun keeps the existing ones) and a queue for the listener.
$CR users list | grep -qw owner || $CR users add owner --role owner --password owner-demo
$CR users list | grep -qw listener || $CR users add listener --role listener --password listener
$CR assign --listener listener --sample 100 || true
echo "==> review app on http://127.0.0.1:8501  (demo logins: listener / listener, owner / owner-demo)"
exec $CR serve --host 127.0.0.1 --port 8501
