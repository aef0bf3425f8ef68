#!/usr/bin/env bash
# HTTP gateway benchmark: plughost vs a bare libmicrohttpd server with the
# same threading settings (bench_mhd_baseline), measured with wrk in
# interleaved A/B rounds so that machine noise hits both alike. Prints the
# median ratio plughost/baseline of requests/s and of p99 latency for
# calc.math.add and, when the notes example has CRUD, a model GET.
#
#   bench/http.sh [BUILD_DIR]     env: ROUNDS (5) SECS (3) CONNS (32) WRK_THREADS (2)
#                                      THREADS (server pool, 4) PH_BIN (plughost binary)
# Every load run is bounded by SECS; the whole script by ~ROUNDS*SECS*4 s.
set -euo pipefail
BUILD=${1:-build}
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-3}
CONNS=${CONNS:-32}
WRK_THREADS=${WRK_THREADS:-2}
THREADS=${THREADS:-4}
PH_BIN=${PH_BIN:-$BUILD/plughost}
BASE_BIN=${BASE_BIN:-$BUILD/bench/bench_mhd_baseline}
command -v wrk >/dev/null || { echo "http.sh: wrk is not installed; run 'make deps' (Debian package wrk)"; exit 1; }
for b in "$PH_BIN" "$BASE_BIN"; do
  [ -x "$b" ] || { echo "http.sh: $b not found; build first (make build)"; exit 1; }
done

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$1$2" && return 0; sleep 0.1; done; echo "http.sh: nothing answers on port $1"; exit 1; }

BPORT=$(free_port); PPORT=$(free_port)
"$BASE_BIN" "$BPORT" "$THREADS" & pids+=($!)
cat > "$tmp/host.ini" <<INI
[host]
package_dirs = $(cd "$BUILD" && pwd)/packages
data_dir = $tmp/data
log_level = warn
reload = false
[http]
listen = 127.0.0.1:$PPORT
threads = $THREADS
INI
"$PH_BIN" run -c "$tmp/host.ini" 2>"$tmp/host.log" & pids+=($!)
wait_http "$BPORT" /
wait_http "$PPORT" /_/health

cat > "$tmp/add.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"a":2,"b":40}'
wrk.headers["Content-Type"] = "application/json"
LUA
[ "$(curl -s -X POST -H 'Content-Type: application/json' -d '{"a":2,"b":40}' "http://127.0.0.1:$PPORT/calc/actors/math/add")" = 42 ] \
  || { echo "http.sh: calc.math.add does not answer 42"; cat "$tmp/host.log"; exit 1; }

# CRUD get: one note, if the notes example and its CRUD actor are there.
crud_path=""
if out=$(curl -s -f -X POST -H 'Content-Type: application/json' -d '{"title":"bench"}' "http://127.0.0.1:$PPORT/notes/models/note" 2>/dev/null); then
  id=$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  crud_path="/notes/models/note/$id"
fi

# run_wrk URL [script] -> "req_per_s p99_ms"
run_wrk() {
  local out
  out=$(wrk -t"$WRK_THREADS" -c"$CONNS" -d"${SECS}s" --latency ${2:+-s "$2"} "$1")
  local rps p99
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' <<<"$out")
  echo "$rps $p99"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

bench_case() { # name plughost_url script
  local name=$1 url=$2 script=${3:-}
  : > "$tmp/r_rps"; : > "$tmp/r_p99"
  printf '%-16s round  base req/s  ph req/s   base p99  ph p99 (ms)\n' "$name"
  for r in $(seq "$ROUNDS"); do
    # alternate which side goes first
    if (( r % 2 )); then b=$(run_wrk "http://127.0.0.1:$BPORT/x" "$script"); p=$(run_wrk "$url" "$script");
    else p=$(run_wrk "$url" "$script"); b=$(run_wrk "http://127.0.0.1:$BPORT/x" "$script"); fi
    read -r brps bp99 <<<"$b"; read -r prps pp99 <<<"$p"
    printf '%-16s %5d %11.0f %9.0f %10.3f %7.3f\n' "" "$r" "$brps" "$prps" "$bp99" "$pp99"
    awk -v a="$prps" -v b="$brps" 'BEGIN {print a/b}' >> "$tmp/r_rps"
    awk -v a="$pp99" -v b="$bp99" 'BEGIN {print a/b}' >> "$tmp/r_p99"
  done
  printf '%-16s median ratio plughost/baseline: req/s %.3fx  p99 %.3fx\n\n' "$name" \
    "$(median < "$tmp/r_rps")" "$(median < "$tmp/r_p99")"
}

echo "wrk -t$WRK_THREADS -c$CONNS ${SECS}s x $ROUNDS interleaved rounds; server pool $THREADS threads; $(nproc) CPUs"
bench_case calc.math.add "http://127.0.0.1:$PPORT/calc/actors/math/add" "$tmp/add.lua"
if [ -n "$crud_path" ]; then
  bench_case notes.note.get "http://127.0.0.1:$PPORT$crud_path"
else
  echo "notes.note.get: skipped (no notes example with CRUD in $BUILD/packages)"
fi
