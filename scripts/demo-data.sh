#!/usr/bin/env bash
# The demo's data, as scripts/demo.sh sets it up (and tests/test_demo.py checks):
# the demo calls processed with the bundled script and model, the demo logins,
# the listener's queue, the demo CRM export and demo reviews, so that every
# owner page has numbers. A rerun keeps what is there. CALLREVIEW_DATA_DIR
# chooses where the database goes (default: data/).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
CR=.venv/bin/callreview

$CR init
echo "==> processing the demo calls (data/demo) with checklists/appliances-inbound.yaml"
$CR process data/demo --checklist checklists/appliances-inbound.yaml --metadata data/demo/metadata.csv || true
echo "==> importing the demo chat exports (data/demo/chats, ratings in data/demo/chats.csv)"
$CR process data/demo/chats/*.csv --checklist checklists/appliances-inbound.yaml --metadata data/demo/chats.csv || true
$CR status
# Demo accounts (a rerun keeps the existing ones) and a queue for the listener.
$CR users list | grep -qw owner || $CR users add owner --role owner --password owner-demo
$CR users list | grep -qw listener || $CR users add listener --role listener --password listener
$CR assign --listener listener --sample 100 || true
# Demo data, so that every owner page has numbers: the CRM export of the demo
# calls, and reviews made from their reference labels (pipeline/reports/demo.py).
$CR outcomes import data/demo/crm.csv --call Звонок --outcome "Статус сделки" --operator Менеджер --time Дата --amount Сумма || true
$CR demo-reviews data/demo || true
