#!/usr/bin/env bash
# Install (Debian packages) and start what `make test` needs when it is missing or down:
# PostgreSQL with the test role, Redis, and Chromium for the browser tests.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# makemessages (and the translations check of `make lint`) runs xgettext and msgmerge
command -v msgmerge >/dev/null 2>&1 || missing+=(gettext)
# Chinese pages' screenshots need a CJK font; npm installs axe-core for the browser tests
[ -n "$(fc-list :lang=zh family 2>/dev/null)" ] || missing+=(fonts-noto-cjk)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "ensure_services: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- axe-core (the browser tests inject it into every page they visit) -------------
# Pinned, into .node/ (ignored by git): 560 kB of minified code we do not write.
AXE_CORE_VERSION="4.11.0"
root="$(cd "$(dirname "$0")/.." && pwd)"
axe_package="$root/.node/node_modules/axe-core/package.json"
if ! grep -q "\"version\": \"$AXE_CORE_VERSION\"" "$axe_package" 2>/dev/null; then
  echo "ensure_services: installing axe-core $AXE_CORE_VERSION into .node/"
  npm install --silent --no-audit --no-fund --prefix "$root/.node" "axe-core@$AXE_CORE_VERSION" >/dev/null
fi

# --- PostgreSQL ---------------------------------------------------------------
if [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
  version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
  echo "ensure_services: creating PostgreSQL $version cluster"
  $SUDO pg_createcluster "$version" main >/dev/null
fi
read -r pg_version pg_name pg_port pg_status _ < <(pg_lsclusters -h | head -n 1)
if [ "$pg_status" != "online" ]; then
  echo "ensure_services: starting PostgreSQL $pg_version/$pg_name on port $pg_port"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$pg_version" "$pg_name" start
fi
psql_postgres() { $SUDO -u postgres psql -p "$pg_port" -v ON_ERROR_STOP=1 -qtAc "$1"; }
if [ "$SUDO" = "" ]; then psql_postgres() { su postgres -c "psql -p $pg_port -v ON_ERROR_STOP=1 -qtAc \"$1\""; }; fi
for _ in $(seq 1 30); do psql_postgres "SELECT 1" >/dev/null 2>&1 && break; sleep 0.5; done
if [ "$(psql_postgres "SELECT 1 FROM pg_roles WHERE rolname = 'smartcollection'")" != "1" ]; then
  psql_postgres "CREATE ROLE smartcollection LOGIN CREATEDB PASSWORD 'smartcollection'"
fi
if [ "$(psql_postgres "SELECT 1 FROM pg_database WHERE datname = 'smartcollection'")" != "1" ]; then
  psql_postgres "CREATE DATABASE smartcollection OWNER smartcollection"
fi

# --- Redis --------------------------------------------------------------------
if ! redis-cli -p 6379 ping >/dev/null 2>&1; then
  echo "ensure_services: starting Redis on 6379"
  redis-server --daemonize yes --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 1 30); do redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi

echo "ensure_services: PostgreSQL $pg_version on $pg_port, Redis on 6379, $(chromium --version 2>/dev/null | head -n 1), axe-core $AXE_CORE_VERSION"
