#!/usr/bin/env bash
# Install everything the tests need and run the whole suite:
#   system packages (PostgreSQL + PostGIS, nats-server, Chromium) via apt-get,
#   Python packages into .venv, services started on loopback, then ruff, mypy and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v nats-server >/dev/null || need+=(nats-server)
command -v chromium >/dev/null || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 || need+=(postgresql-postgis)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  echo "installing system packages: ${need[*]}"
  $sudo_cmd apt-get update -qq
  # postgresql-postgis pulls the PostGIS build of the distribution's PostgreSQL
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

bash scripts/bootstrap.sh test

services_dir=$(mktemp -d /tmp/rtcc-test-services.XXXXXX)
trap 'bash scripts/services.sh stop "$services_dir"; rm -rf "$services_dir"' EXIT
# an assignment, not `eval "$(…)"` straight away: a service that cannot start (a port still held by an
# earlier run, say) stops the run here with its message instead of failing every integration test
service_env=$(RTCC_TEST_PG_PORT=${RTCC_TEST_PG_PORT:-54339} RTCC_TEST_NATS_PORT=${RTCC_TEST_NATS_PORT:-42239} \
  RTCC_TEST_MQTT_PORT=${RTCC_TEST_MQTT_PORT:-18849} bash scripts/services.sh start "$services_dir")
eval "$service_env"
export RTCC_TEST_CHROMIUM=${RTCC_TEST_CHROMIUM:-$(command -v chromium)}
export RTCC_REQUIRE_SERVICES=1   # integration tests fail (not skip) when a service is missing

echo "== ruff"; .venv/bin/ruff check rtcc tests bench
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/pytest -q -p no:cacheprovider "$@"
