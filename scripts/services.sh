#!/usr/bin/env bash
# Start the integration-test services on loopback: PostgreSQL + PostGIS and
# nats-server (JetStream + MQTT). Prints `export ...` lines for the tests.
#   usage: eval "$(bash scripts/services.sh start [DIR])"   |   bash scripts/services.sh stop [DIR]
set -euo pipefail
action=${1:-start}
dir=${2:-${RTCC_SERVICES_DIR:-/tmp/rtcc-services}}
pg_port=${RTCC_TEST_PG_PORT:-54329}
nats_port=${RTCC_TEST_NATS_PORT:-42229}
mqtt_port=${RTCC_TEST_MQTT_PORT:-18839}
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)

run_as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ "$action" = stop ]; then
  [ -f "$dir/nats.pid" ] && kill "$(cat "$dir/nats.pid")" 2>/dev/null || true
  [ -d "$dir/pg" ] && run_as_pg "$pg_bin/pg_ctl" -D "$dir/pg" -m fast stop >/dev/null 2>&1 || true
  exit 0
fi

mkdir -p "$dir"
if [ "$(id -u)" = 0 ]; then chown postgres "$dir" 2>/dev/null || true; chmod 755 "$dir"; fi

# --- PostgreSQL + PostGIS -----------------------------------------------------
if ! run_as_pg "$pg_bin/pg_ctl" -D "$dir/pg" status >/dev/null 2>&1; then
  if [ ! -f "$dir/pg/PG_VERSION" ]; then
    run_as_pg "$pg_bin/initdb" -D "$dir/pg" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1
  fi
  run_as_pg "$pg_bin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w \
    -o "-p $pg_port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
fi
for db in rtcc_test rtcc_bench; do
  if ! "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1; then
    "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -qc "CREATE DATABASE $db" >/dev/null
  fi
  "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d "$db" -qc "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
done

# --- nats-server with JetStream and MQTT ---------------------------------------
if ! { [ -f "$dir/nats.pid" ] && kill -0 "$(cat "$dir/nats.pid")" 2>/dev/null; }; then
  cat >"$dir/nats.conf" <<CONF
listen: 127.0.0.1:$nats_port
server_name: rtcc_test
jetstream { store_dir: "$dir/js", max_memory_store: 256MB, max_file_store: 4GB }
mqtt { listen: 127.0.0.1:$mqtt_port }
CONF
  nats-server -c "$dir/nats.conf" >"$dir/nats.log" 2>&1 &
  echo $! >"$dir/nats.pid"
  for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/$nats_port) 2>/dev/null && break
    sleep 0.1
  done
fi

echo "export RTCC_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:$pg_port/rtcc_test"
echo "export RTCC_BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:$pg_port/rtcc_bench"
echo "export RTCC_TEST_NATS_URL=nats://127.0.0.1:$nats_port"
echo "export RTCC_TEST_MQTT_PORT=$mqtt_port"
