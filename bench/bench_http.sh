#!/usr/bin/env bash
# HTTP gateway benchmark: plughost vs a bare libmicrohttpd server with the
# same threading settings (bench_mhd_baseline), both on 127.0.0.1.
#
# 1. Throughput and latency: wrk in interleaved A/B rounds (the side that
#    goes first alternates) so that machine noise hits both alike. Prints the
#    median over rounds of the per-round ratio plughost/baseline of req/s and
#    of p99 latency, for calc.math.add and a CRUD get (notes.note.get on a
#    record created first).
# 2. Instructions per request: each server runs under valgrind's callgrind
#    and answers N1, then (a fresh run) N2 keep-alive requests sent one after
#    another by curl; (Ir(N2) - Ir(N1)) / (N2 - N1) is the cost of one
#    request with start-up and shutdown cancelled out. (`perf stat` has no
#    hardware counters on many VMs; callgrind counts the same on any.)
#
#   bench/bench_http.sh [BUILD_DIR]
#   env: ROUNDS (5) SECS (3) CONNS (32) WRK_THREADS (2) THREADS (server pool, 4)
#        CALLGRIND (1; 0 skips part 2) N1 (200) N2 (2200) PH_BIN BASE_BIN
# Bounded: each wrk run lasts SECS; every wait below has a limit; the whole
# script takes about ROUNDS*SECS*4 s plus ~1-2 min of callgrind.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BUILD=${1:-build}
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-3}
CONNS=${CONNS:-32}
WRK_THREADS=${WRK_THREADS:-2}
THREADS=${THREADS:-4}
CALLGRIND=${CALLGRIND:-1}
N1=${N1:-200}
N2=${N2:-2200}
PH_BIN=${PH_BIN:-$BUILD/plughost}
BASE_BIN=${BASE_BIN:-$BUILD/bench/bench_mhd_baseline}
me=bench_http.sh
command -v wrk >/dev/null || { echo "$me: wrk is not installed; run 'make deps' (Debian package wrk)"; exit 1; }
command -v curl >/dev/null || { echo "$me: curl is not installed; run 'make deps'"; exit 1; }
for b in "$PH_BIN" "$BASE_BIN"; do
  [ -x "$b" ] || { echo "$me: $b not found; build first (make build)"; exit 1; }
done
PH_BIN=$(realpath "$PH_BIN"); BASE_BIN=$(realpath "$BASE_BIN")
PKGS=$(cd "$BUILD" && pwd)/packages

tmp=$(mktemp -d)
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; rm -rf "$tmp"' EXIT

# A port nobody listens on (the kernel picks it; the race to reuse it is harmless here).
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # port path tries(0.1 s each)
  for _ in $(seq "${3:-100}"); do curl -sf -o /dev/null "http://127.0.0.1:$1$2" && return 0; sleep 0.1; done
  echo "$me: nothing answers on port $1"; return 1
}
write_ini() { # port data_dir
  cat > "$tmp/host-$1.ini" <<INI
[host]
package_dirs = $PKGS
data_dir = $2
log_level = warn
reload = false
[http]
listen = 127.0.0.1:$1
threads = $THREADS
INI
}
# Creates a note on the plughost at port $1; prints its REST path.
make_note() {
  local out
  out=$(curl -s -f -X POST -H 'Content-Type: application/json' -d '{"title":"bench"}' \
        "http://127.0.0.1:$1/notes/models/note") || return 1
  printf '/notes/models/note/%s\n' "$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
}

ADD_BODY='{"a":2,"b":40}'
cat > "$tmp/add.lua" <<LUA
wrk.method = "POST"
wrk.body = '$ADD_BODY'
wrk.headers["Content-Type"] = "application/json"
LUA

# ---- 1. wrk A/B rounds ----

BPORT=$(free_port); PPORT=$(free_port)
"$BASE_BIN" "$BPORT" "$THREADS" & pids+=($!)
write_ini "$PPORT" "$tmp/data"
"$PH_BIN" run -c "$tmp/host-$PPORT.ini" 2>"$tmp/host.log" & pids+=($!)
wait_http "$BPORT" /
wait_http "$PPORT" "/_/health?ready"
[ "$(curl -s -X POST -H 'Content-Type: application/json' -d "$ADD_BODY" "http://127.0.0.1:$PPORT/calc/actors/math/add")" = 42 ] \
  || { echo "$me: calc.math.add does not answer 42"; cat "$tmp/host.log"; exit 1; }
crud_path=$(make_note "$PPORT" || true)
[ -n "$crud_path" ] && curl -s -f -o /dev/null "http://127.0.0.1:$PPORT$crud_path" || crud_path=""

# run_wrk URL [script] -> "req_per_s p99_ms"
run_wrk() {
  local out rps p99
  out=$(timeout $((SECS + 30)) wrk -t"$WRK_THREADS" -c"$CONNS" -d"${SECS}s" --latency ${2:+-s "$2"} "$1")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' <<<"$out")
  echo "$rps $p99"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

bench_case() { # name plughost_url [script]
  local name=$1 url=$2 script=${3:-} r b p brps bp99 prps pp99
  : > "$tmp/r_rps"; : > "$tmp/r_p99"
  printf '%-16s round  base req/s  ph req/s   base p99  ph p99 (ms)\n' "$name"
  for r in $(seq "$ROUNDS"); do
    if (( r % 2 )); then b=$(run_wrk "http://127.0.0.1:$BPORT/x" "$script"); p=$(run_wrk "$url" "$script");
    else p=$(run_wrk "$url" "$script"); b=$(run_wrk "http://127.0.0.1:$BPORT/x" "$script"); fi
    read -r brps bp99 <<<"$b"; read -r prps pp99 <<<"$p"
    printf '%-16s %5d %11.0f %9.0f %10.3f %7.3f\n' "" "$r" "$brps" "$prps" "$bp99" "$pp99"
    awk -v a="$prps" -v b="$brps" 'BEGIN {print a/b}' >> "$tmp/r_rps"
    awk -v a="$pp99" -v b="$bp99" 'BEGIN {print a/b}' >> "$tmp/r_p99"
  done
  figure "http: $name req/s plughost/baseline" "$(median < "$tmp/r_rps")" x ">=" 0.85
  figure "http: $name p99 plughost/baseline" "$(median < "$tmp/r_p99")" x "<=" 1.5
  echo
}

echo "wrk -t$WRK_THREADS -c$CONNS ${SECS}s x $ROUNDS interleaved rounds; server pool $THREADS threads; $(nproc) CPUs"
bench_case calc.math.add "http://127.0.0.1:$PPORT/calc/actors/math/add" "$tmp/add.lua"
if [ -n "$crud_path" ]; then
  bench_case notes.note.get "http://127.0.0.1:$PPORT$crud_path"
else
  echo "notes.note.get: skipped (no notes example with CRUD in $PKGS)"
fi
stop_all

# ---- 2. instructions per request (callgrind) ----

if [ "$CALLGRIND" = 0 ]; then exit 0; fi
if ! command -v valgrind >/dev/null; then
  echo "instructions/request: skipped (valgrind not installed; Debian package valgrind)"
  exit 0
fi

# Total instructions (Ir) of one server run answering $n requests.
# args: kind(base|ph) n method path body
callgrind_ir() {
  local kind=$1 n=$2 method=$3 path=$4 body=$5 port out pid ir
  port=$(free_port)
  out="$tmp/cg.$kind.$n.$RANDOM"
  if [ "$kind" = base ]; then
    valgrind --tool=callgrind --callgrind-out-file="$out" "$BASE_BIN" "$port" "$THREADS" 2>"$out.log" &
  else
    rm -rf "$tmp/cgdata"; cp -r "$tmp/data" "$tmp/cgdata" # same database, so the note exists
    write_ini "$port" "$tmp/cgdata"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$PH_BIN" run -c "$tmp/host-$port.ini" 2>"$out.log" &
  fi
  pid=$!
  pids+=("$pid")
  wait_http "$port" "$([ "$kind" = base ] && echo / || echo "/_/health?ready")" 600 >&2 || { cat "$out.log" >&2; return 1; }
  # n keep-alive requests, one after another, on one connection
  : > "$tmp/curl.cfg"
  for _ in $(seq "$n"); do printf 'url = "http://127.0.0.1:%s%s"\noutput = "/dev/null"\n' "$port" "$path" >> "$tmp/curl.cfg"; done
  if [ -n "$body" ]; then
    timeout 600 curl -s -f -K "$tmp/curl.cfg" -X "$method" -H 'Content-Type: application/json' -d "$body" >&2 \
      || { echo "$me: a request to the $kind server failed" >&2; kill -KILL "$pid"; return 1; }
  else
    timeout 600 curl -s -f -K "$tmp/curl.cfg" >&2 \
      || { echo "$me: a request to the $kind server failed" >&2; kill -KILL "$pid"; return 1; }
  fi
  kill -TERM "$pid"
  timeout 120 tail --pid="$pid" -f /dev/null || kill -KILL "$pid"
  wait "$pid" 2>/dev/null || true
  pids=()
  ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$out")
  [ -n "$ir" ] || { echo "$me: no callgrind totals in $out" >&2; cat "$out.log" >&2; return 1; }
  echo "$ir"
}

per_request() { # kind method path body -> instructions per request
  local a b
  a=$(callgrind_ir "$1" "$N1" "$2" "$3" "$4") || return 1
  b=$(callgrind_ir "$1" "$N2" "$2" "$3" "$4") || return 1
  awk -v a="$a" -v b="$b" -v n=$((N2 - N1)) 'BEGIN {printf "%.0f", (b - a) / n}'
}

echo "instructions/request (callgrind Ir, ($N2 - $N1 runs) difference over $((N2 - N1)) sequential keep-alive requests)"
printf '%-16s %12s %12s %8s\n' case baseline plughost ratio
ipr_case() { # name method path body
  local base ph
  base=$(per_request base "$2" /x "$4") && ph=$(per_request ph "$2" "$3" "$4") || { echo "$1: callgrind run failed"; return 0; }
  printf '%-16s %12s %12s %7.2fx\n' "$1" "$base" "$ph" "$(awk -v a="$ph" -v b="$base" 'BEGIN {print a/b}')"
  figure "http: $1 instructions/request plughost/base" "$(awk -v a="$ph" -v b="$base" 'BEGIN {print a/b}')" x "<=" 1.5
}
ipr_case calc.math.add POST /calc/actors/math/add "$ADD_BODY"
if [ -n "$crud_path" ]; then
  ipr_case notes.note.get GET "$crud_path" ""
fi
