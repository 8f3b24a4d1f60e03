# shellcheck shell=bash
# A throwaway PostgreSQL cluster on loopback for the tests (sourced, not run).
#   pg_start DIR   initdb + start on a free port; exports CLINIC_TEST_PG_URL
#   pg_stop        stop it (safe to call twice)
# initdb refuses to run as root, so as root the cluster runs as `postgres`.

# The server of the major version Debian's `postgresql` package depends on
# (15 on Debian 12), not whichever happens to be newest on this machine.
pg_bindir() {
  local dep major d
  dep="$(dpkg-query -W -f='${Depends}' postgresql 2>/dev/null)" || dep=""
  major="${dep#postgresql-}"
  major="${major%%[!0-9]*}"
  d="/usr/lib/postgresql/$major/bin"
  [ -n "$major" ] && [ -x "$d/initdb" ] || {
    echo "PostgreSQL server not installed: run 'bash scripts/deps.sh' (apt-get install postgresql)" >&2
    return 1
  }
  printf '%s\n' "$d"
}

pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pg_start() {
  local dir="$1" bin port
  bin="$(pg_bindir)" || return 1
  port="$(pg_free_port)"
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  pg_as_owner "$bin/initdb" -D "$dir/data" -A trust -U clinic -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  # fsync stays on: the sync tests kill processes and must see real commits.
  pg_as_owner "$bin/pg_ctl" -D "$dir/data" -w -t 60 -l "$dir/log" \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null \
    || { cat "$dir/log" >&2; return 1; }
  PG_TEST_DIR="$dir"
  PG_TEST_BIN="$bin"
  export CLINIC_TEST_PG_URL="postgres://clinic@127.0.0.1:$port/postgres"
}

pg_stop() {
  if [ -n "${PG_TEST_DIR:-}" ] && [ -d "$PG_TEST_DIR/data" ]; then
    pg_as_owner "$PG_TEST_BIN/pg_ctl" -D "$PG_TEST_DIR/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$PG_TEST_DIR"
    PG_TEST_DIR=""
  fi
}
