#!/usr/bin/env bash
# Makes sure the servers the tests talk to are up, and says what to do when one cannot be:
#   - PostgreSQL at 127.0.0.1:5432 with a database `test` that user `postgres` reaches without a
#     password (the store, log and replica tests each work in a schema of their own there);
#   - Redis at 127.0.0.1:6379 (the shared governance counters; each test under a key prefix of its own).
# A server that is installed but not running is started; database `test` is created if missing. When
# SWITCHYARD_TEST_PG_URL or SWITCHYARD_TEST_REDIS_URL points elsewhere, that server is only checked.
# Called by scripts/test.sh and .ci/run; safe to run again at any time.
set -euo pipefail

PG_URL="${SWITCHYARD_TEST_PG_URL:-}"
REDIS_URL="${SWITCHYARD_TEST_REDIS_URL:-}"
problems=()

# Runs a command as root (directly, or through sudo for a developer's own account).
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    return 1
  fi
}

# Polls a check command for up to $1 seconds.
wait_for() {
  local seconds=$1
  shift
  for _ in $(seq $((seconds * 5))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

# --- PostgreSQL ------------------------------------------------------------------------------------
postgres() {
  if ! command -v psql >/dev/null || ! command -v pg_isready >/dev/null; then
    problems+=("PostgreSQL is not installed (psql and pg_isready are missing): apt-get install postgresql")
    return
  fi
  local answer
  if [ -n "$PG_URL" ]; then
    if ! answer=$(psql -w "$PG_URL" -tAc 'SELECT 1' 2>&1); then
      problems+=("PostgreSQL at SWITCHYARD_TEST_PG_URL ($PG_URL) does not answer: ${answer%%$'\n'*}")
    fi
    return
  fi
  if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
    if [ -z "$version" ] || ! command -v pg_ctlcluster >/dev/null; then
      problems+=("PostgreSQL is not installed (nothing answers on 127.0.0.1:5432): apt-get install postgresql")
      return
    fi
    echo "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
      as_root pg_ctlcluster "$version" main start || true
    if ! wait_for 30 pg_isready -h 127.0.0.1 -p 5432; then
      problems+=("PostgreSQL $version is installed but did not start on 127.0.0.1:5432: try 'pg_ctlcluster $version main start' as root and read /var/log/postgresql/postgresql-$version-main.log")
      return
    fi
  fi
  if ! answer=$(psql -w -h 127.0.0.1 -p 5432 -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'test'" 2>&1); then
    if [[ "$answer" == *password* ]]; then
      problems+=("PostgreSQL on 127.0.0.1:5432 wants a password from user postgres (${answer%%$'\n'*}). The tests connect as postgres@127.0.0.1 without one: add the line 'host all postgres 127.0.0.1/32 trust' above the other host lines of pg_hba.conf and reload PostgreSQL, or set SWITCHYARD_TEST_PG_URL to a URL with a password")
    else
      problems+=("PostgreSQL on 127.0.0.1:5432 cannot be queried as user postgres: ${answer%%$'\n'*}")
    fi
    return
  fi
  if [ "$answer" != 1 ]; then
    echo "creating PostgreSQL database test"
    psql -w -h 127.0.0.1 -p 5432 -U postgres -d postgres -qc 'CREATE DATABASE test' >/dev/null
  fi
}

# --- Redis -----------------------------------------------------------------------------------------
redis() {
  if ! command -v redis-cli >/dev/null; then
    problems+=("Redis is not installed (redis-cli is missing): apt-get install redis-server")
    return
  fi
  if [ -n "$REDIS_URL" ]; then
    [ "$(redis-cli -u "$REDIS_URL" ping 2>/dev/null)" = PONG ] ||
      problems+=("Redis at SWITCHYARD_TEST_REDIS_URL ($REDIS_URL) does not answer PING")
    return
  fi
  [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ] && return
  if ! command -v redis-server >/dev/null; then
    problems+=("Redis is not installed (nothing answers on 127.0.0.1:6379): apt-get install redis-server")
    return
  fi
  echo "starting Redis"
  # In memory only: the tests' keys all expire, and nothing needs to survive a restart.
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null || true
  wait_for 10 redis-cli -h 127.0.0.1 -p 6379 ping ||
    problems+=("Redis is installed but did not start on 127.0.0.1:6379: run 'redis-server --bind 127.0.0.1 --port 6379' to see why")
}

postgres
redis

if [ ${#problems[@]} -gt 0 ]; then
  {
    echo "scripts/services.sh: the tests need PostgreSQL and Redis, and:"
    for p in "${problems[@]}"; do echo "  - $p"; done
    echo "(Debian packages; run 'apt-get update' first on a new machine, then this script again.)"
  } >&2
  exit 1
fi
echo "services: PostgreSQL (database test) and Redis are up"
