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
# Demo accounts with generated passwords, written to demo-logins.txt (0600) beside
# the database; a rerun keeps the existing accounts. Then a queue for the listener.
LOGINS="${CALLREVIEW_DATA_DIR:-data}/demo-logins.txt"
for user in owner listener; do
  if ! $CR users list | grep -qw "$user"; then
    password=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(12))')
    $CR users add "$user" --role "$user" --password="$password"  # "=": a password may start with "-"
    (umask 077; echo "$user $password" >> "$LOGINS")
  fi
done
$CR assign --listener listener --sample 100 || true
# Demo data, so that every owner page has numbers: the CRM export of the demo
# calls, and reviews made from their reference labels (pipeline/reports/demo.py).
$CR outcomes import data/demo/crm.csv --call Звонок --outcome "Статус сделки" --operator Менеджер --time Дата --amount Сумма || true
$CR demo-reviews data/demo || true
echo "==> demo logins (name, password), kept in $LOGINS:"
cat "$LOGINS" 2>/dev/null || echo "   (accounts made before logins were generated: see callreview users list)"
