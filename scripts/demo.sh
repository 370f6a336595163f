#!/usr/bin/env bash
# Sets the machine up (scripts/setup.sh), then runs pgclone's main job on a
# throwaway cluster: a primary in a temporary directory, a standby cloned from
# it with `pgclone standby clone`, started, shown streaming and replaying rows
# written after the clone. Everything is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGCLONE=$(pwd)/target/release/pgclone
say() { printf '\n==> %s\n' "$*"; }
# PostgreSQL refuses to run as root: as root, the servers and pgclone run as
# the postgres user, as a DBA would run them.
if [ "$(id -u)" -eq 0 ]; then
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

work=$(mktemp -d /tmp/pgclone-demo.XXXXXX)
chmod 755 "$work"
[ "$(id -u)" -eq 0 ] && chown postgres: "$work"
port_p=$((20000 + RANDOM % 20000)); port_s=$((port_p + 1))
cleanup() {
    as_pg "$PGBIN/pg_ctl" -D "$work/standby" -m immediate stop >/dev/null 2>&1 || true
    as_pg "$PGBIN/pg_ctl" -D "$work/primary" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
psql_p() { as_pg psql -X -q -h "$work" -p "$port_p" -U postgres -d postgres "$@"; }
psql_s() { as_pg psql -X -q -h "$work" -p "$port_s" -U postgres -d postgres "$@"; }

say "creating a throwaway primary in $work/primary (port $port_p)"
as_pg "$PGBIN/initdb" -U postgres -A trust -D "$work/primary" >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$work/primary" -l "$work/primary.log" -w \
    -o "-p $port_p -k $work -c listen_addresses=''" start >/dev/null
psql_p -c "CREATE TABLE demo(id int, at timestamptz default now())" \
       -c "INSERT INTO demo(id) SELECT generate_series(1, 1000)"

cat > "$work/pgclone.conf" <<CONF
node_id=2
node_name='standby1'
data_directory='$work/standby'
use_replication_slots=true
CONF
[ "$(id -u)" -eq 0 ] && chown postgres: "$work/pgclone.conf"

say "pgclone standby clone --dry-run (checks and plan; changes nothing)"
as_pg env HOME="$work" "$PGCLONE" -f "$work/pgclone.conf" standby clone \
    -h "$work" -p "$port_p" -U postgres -d postgres --dry-run

say "pgclone standby clone"
as_pg env HOME="$work" "$PGCLONE" -f "$work/pgclone.conf" standby clone \
    -h "$work" -p "$port_p" -U postgres -d postgres --fast-checkpoint

say "the recovery configuration pgclone wrote"
grep -E '^(primary_|recovery_)' "$work/standby/postgresql.auto.conf"
ls "$work/standby/standby.signal"

say "starting the standby (port $port_s)"
as_pg "$PGBIN/pg_ctl" -D "$work/standby" -l "$work/standby.log" -w \
    -o "-p $port_s -k $work -c listen_addresses=''" start >/dev/null

say "writing rows on the primary after the clone"
psql_p -c "INSERT INTO demo(id) SELECT generate_series(1001, 1500)"
for _ in $(seq 1 50); do
    n=$(psql_s -At -c "SELECT count(*) FROM demo")
    [ "$n" = 1500 ] && break
    sleep 0.2
done

say "on the standby: pg_stat_wal_receiver and the replayed rows"
psql_s -c "SELECT status, sender_host, slot_name FROM pg_stat_wal_receiver" \
       -c "SELECT count(*) AS rows_on_standby, max(id) FROM demo"
say "on the primary: pg_stat_replication"
psql_p -c "SELECT application_name, state, sync_state FROM pg_stat_replication"
[ "$n" = 1500 ] || { echo "ERROR: the standby did not replay the new rows" >&2; exit 1; }
say "done: the standby streams from the primary (the throwaway cluster is removed now)"
