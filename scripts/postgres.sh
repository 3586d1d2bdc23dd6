#!/usr/bin/env bash
# A throwaway PostgreSQL for tests and benchmarks: apt's server, own data directory, own port.
#   scripts/postgres.sh start DIR PORT                  -> prints a DATABASE_URL on stdout
#   scripts/postgres.sh replica DIR PORT PRIMARY_PORT   -> a streaming hot standby of the server on
#                                                          PRIMARY_PORT; prints its URL (DATABASE_REPLICA_URLS)
#   scripts/postgres.sh stop DIR
# A stopped server (primary or standby) starts again with `start DIR PORT`.
# PG_OPTIONS adds server options (the tests pass "-c fsync=off"; benchmarks keep durability on).
set -euo pipefail

cmd=${1:?start|stop}
dir=${2:?data directory}

pg_bin() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$found" ]; then
    echo "installing PostgreSQL from apt..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
    found=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  echo "$found"
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

serve() {  # start the server in $dir (made already) on port $1
  as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start \
    -o "-p $1 -k $dir/socket -c listen_addresses=127.0.0.1 -c max_connections=200 ${PG_OPTIONS:-}" >/dev/null
  echo "postgres://postgres@127.0.0.1:$1/postgres"
}

case "$cmd" in
  start)
    port=${3:?port}
    bin=$(pg_bin)
    mkdir -p "$dir/data" "$dir/socket"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      # initdb's pg_hba.conf lets local connections replicate (trust), and wal_level=replica
      # is the default: `replica` needs nothing more from the primary.
      as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    serve "$port"
    ;;
  replica)
    port=${3:?port}
    primary_port=${4:?primary port}
    bin=$(pg_bin)
    mkdir -p "$dir/socket"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      # A copy of the running primary, streaming its WAL from then on (-R: standby.signal and
      # primary_conninfo); a checkpoint at once (-c fast) rather than at the primary's pace.
      as_postgres "$bin/pg_basebackup" -D "$dir/data" -h 127.0.0.1 -p "$primary_port" -U postgres \
        -R -X stream -c fast >/dev/null
    fi
    serve "$port"
    ;;
  stop)
    bin=$(pg_bin)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    ;;
  *)
    echo "usage: $0 start DIR PORT | replica DIR PORT PRIMARY_PORT | stop DIR" >&2
    exit 2
    ;;
esac
