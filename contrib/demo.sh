#!/bin/sh
# demo.sh BUILD-DIR: the main job on the embedded default.  Starts snapkeepd
# on a local SQLite file (./demo/snapkeep.db) with SMTP on 127.0.0.1:2525
# and the web view on 127.0.0.1:8080, lets snapkeep-sim replay the last 60
# days of a small fleet into it over SMTP, prints the fleet and the web
# view's URL, and keeps the daemon running until Ctrl-C.
# (build.sh run calls this after building.)
#
# Environment: SNAPKEEP_DEMO_DIR (./demo), SNAPKEEP_DEMO_SMTP_PORT (2525),
# SNAPKEEP_DEMO_WEB_PORT (8080), SNAPKEEP_DEMO_DEVICES (12),
# SNAPKEEP_DEMO_DAYS (60), SNAPKEEP_DEMO_SECONDS (stop after this many
# seconds instead of waiting for Ctrl-C).
set -eu
build=${1:?usage: demo.sh BUILD-DIR}
top=$(cd "$(dirname "$0")/.." && pwd)
state=${SNAPKEEP_DEMO_DIR:-$top/demo}
smtp_port=${SNAPKEEP_DEMO_SMTP_PORT:-2525}
web_port=${SNAPKEEP_DEMO_WEB_PORT:-8080}
devices=${SNAPKEEP_DEMO_DEVICES:-12}
days=${SNAPKEEP_DEMO_DAYS:-60}
mkdir -p "$state"
state=$(cd "$state" && pwd)

cat >"$state/snapkeep.conf" <<CONF
# Written by contrib/demo.sh: the embedded default, on loopback only.
[daemon]
user =
state_dir = $state
log_level = info

[store]
db = $state/snapkeep.db

[smtp]
listen = 127.0.0.1:$smtp_port

[web]
listen = 127.0.0.1:$web_port
CONF

"$build/snapkeepd" --config "$state/snapkeep.conf" -n
"$build/snapkeepd" --config "$state/snapkeep.conf" --foreground 2>>"$state/snapkeepd.log" &
daemon=$!
stop() {
	kill -TERM "$daemon" 2>/dev/null || true
	wait "$daemon" 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT TERM

# Wait for the web view (the last service to come up is as good a sign as any).
i=0
until curl -fsS -o /dev/null "http://127.0.0.1:$web_port/healthz" 2>/dev/null; do
	i=$((i + 1))
	if [ "$i" -gt 100 ] || ! kill -0 "$daemon" 2>/dev/null; then
		echo "demo: snapkeepd did not start; see $state/snapkeepd.log" >&2
		tail -n 20 "$state/snapkeepd.log" >&2
		exit 1
	fi
	sleep 0.1
done

start=$(date -u -d "-$days days" +%Y-%m-%d)
echo "demo: simulating $devices printers sending AutoSend snapshots since $start to smtp://127.0.0.1:$smtp_port"
"$build/snapkeep-sim" --devices "$devices" --seed 1 --start "$start" --days "$days" \
	--smtp "smtp://127.0.0.1:$smtp_port" --connections 4 --manifest "$state/manifest.jsonl"
# Accepted is durable; parsing follows in the daemon's workers.  Wait for it.
i=0
while [ "$(sqlite3 -readonly "$state/snapkeep.db" "SELECT count(*) FROM intake_log WHERE outcome = 'pending'")" != 0 ] &&
	[ "$i" -lt 600 ]; do
	i=$((i + 1))
	sleep 0.5
done
echo
"$build/snapkeep" devices --db "$state/snapkeep.db"
echo
echo "web view:  http://127.0.0.1:$web_port/"
echo "database:  $state/snapkeep.db  (sqlite3 -readonly $state/snapkeep.db 'SELECT * FROM device_status')"
echo "log:       $state/snapkeepd.log"
echo "SMTP:      127.0.0.1:$smtp_port (point snapkeep-sim or a printer's AutoSend here)"
if [ -n "${SNAPKEEP_DEMO_SECONDS:-}" ]; then
	sleep "$SNAPKEEP_DEMO_SECONDS"
else
	echo "snapkeepd keeps running; press Ctrl-C to stop it."
	wait "$daemon"
fi
