#!/usr/bin/env bash
# A package without models or sql/ scripts gets its database at its first
# ph_db call, not at start (issue 17, item 6): after start-up there is no
# database file for it and the host holds no descriptor of one; the first
# call that queries creates it and works; a restart with the database there
# opens it at start as before. Bounded: two starts, a few requests.
set -euo pipefail
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
src=$(cd "$(dirname "$0")/.." && pwd)
for name in tally quiet; do
  mkdir -p "$tmp/pk/$name"
  printf '[package]\nname = %s\nversion = 1.0.0\n' "$name" >"$tmp/pk/$name/package.ini"
done
cat >"$tmp/tally.c" <<'C'
#include <plughost/sdk.h>
static int64_t bump(ph_ctx *ctx)
{
    ph_json *rows = NULL;
    if (ph_db_query(ctx, "CREATE TABLE IF NOT EXISTS t(x INTEGER)", NULL, NULL) ||
        ph_db_query(ctx, "INSERT INTO t VALUES (1)", NULL, NULL) ||
        ph_db_query(ctx, "SELECT count(*) AS n FROM t", NULL, &rows))
        return -1;
    int64_t n = ph_json_i64(ctx, ph_json_get(ctx, ph_json_at(ctx, rows, 0), "n"));
    ph_json_free(ctx, rows);
    return n;
}
static const ph_method tally_methods[] = {PH_METHOD0(bump, PH_I64)};
PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("tally", tally_methods)));
C
cat >"$tmp/quiet.c" <<'C'
#include <plughost/sdk.h>
static int64_t one(ph_ctx *ctx) { (void)ctx; return 1; }
static const ph_method quiet_methods[] = {PH_METHOD0(one, PH_I64)};
PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("quiet", quiet_methods)));
C
for name in tally quiet; do
  cc -std=c11 -shared -fPIC -fvisibility=hidden -I"$src/sdk/include" -DPH_PACKAGE_NAME="\"$name\"" \
    -DPH_PACKAGE_VERSION='"1.0.0"' -o "$tmp/pk/$name/$name.so" "$tmp/$name.c"
done
start() {
  p=$(port)
  "$PH_BIN" --packages "$tmp/pk" --data-dir "$tmp/data" --log-level error run --listen "127.0.0.1:$p" \
    >>"$tmp/run.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 500); do
    curl -sf -o /dev/null "http://127.0.0.1:$p/_/health?ready" && return 0
    sleep 0.02
  done
  cat "$tmp/run.log"; fail "host did not come up"
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
dbs_open() { ls -l "/proc/$pid/fd" 2>/dev/null | grep -c "$1" || true; }
start
[ ! -e "$tmp/data/tally/tally.db" ] || fail "tally's database was created at start"
[ ! -e "$tmp/data/quiet/quiet.db" ] || fail "quiet's database was created at start"
[ "$(dbs_open "\\.db")" = 0 ] || fail "the host holds database descriptors for packages without models"
got=$(curl -s -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$p/tally/actors/tally/bump")
[ "$got" = 1 ] || fail "first ph_db call answered '$got', expected 1"
got=$(curl -s -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$p/tally/actors/tally/bump")
[ "$got" = 2 ] || fail "second ph_db call answered '$got', expected 2"
[ -e "$tmp/data/tally/tally.db" ] || fail "tally's database was not created by its first ph_db"
[ "$(curl -s -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$p/quiet/actors/quiet/one")" = 1 ] || fail "quiet does not answer"
[ ! -e "$tmp/data/quiet/quiet.db" ] || fail "quiet's database was created without a ph_db"
stop
start # the database is there now: opened at start, the rows kept
got=$(curl -s -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$p/tally/actors/tally/bump")
[ "$got" = 3 ] || fail "after a restart ph_db answered '$got', expected 3"
stop
echo "lazy store: no database or descriptor at start for packages without models; first ph_db creates it; kept across a restart"
