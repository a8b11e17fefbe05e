#!/bin/sh
# demo.sh BUILD-DIR: the main job on the embedded default.  Imports the
# example snapshot mails into ./demo/snapkeep.db and shows the fleet and
# each device.  (build.sh run calls this after building.)
set -eu
build=${1:?usage: demo.sh BUILD-DIR}
top=$(cd "$(dirname "$0")/.." && pwd)
state=${SNAPKEEP_DEMO_DIR:-$top/demo}
mkdir -p "$state"
db="$state/snapkeep.db"

"$build/snapkeep" import --db "$db" "$top/tests/data/examples"
echo
"$build/snapkeep" devices --db "$db"
for serial in $(sqlite3 "$db" 'SELECT serial FROM device_status ORDER BY serial'); do
	echo
	"$build/snapkeep" show --db "$db" "$serial"
done
echo
echo "database: $db (sqlite3 $db 'SELECT * FROM device_status')"
