#!/usr/bin/env bash
# HTTP gateway benchmark: plughost against three baselines on 127.0.0.1,
# each measured in the same run:
#  - bare: a libmicrohttpd server answering a fixed body, with the same
#    threading settings (bench_mhd_baseline) -- the floor of an HTTP library;
#  - nginx+Lua: nginx from Debian with its Lua module and lua-cjson, 2
#    workers, decoding {"a":2,"b":40} and answering 42 -- what a user would
#    pick for a scripted JSON endpoint;
#  - crud: a hand-written libmicrohttpd + prepared sqlite3 + jansson service
#    for the notes example's paths (bench_crud_http_baseline), for CRUD get
#    and new over HTTP.
#
# 1. Throughput, latency and server CPU time: wrk in interleaved A/B rounds
#    (the side that goes first alternates) so that machine noise hits both
#    alike. Prints the median over rounds of the per-round ratio
#    plughost/baseline of req/s, of p99 latency and of the server's CPU time
#    (user + system, all its threads and processes) per request.
# 2. Instructions per request: each server runs under valgrind's callgrind
#    and answers N1, then (a fresh run) N2 keep-alive requests sent one after
#    another by curl; (Ir(N2) - Ir(N1)) / (N2 - N1) is the cost of one
#    request with start-up and shutdown cancelled out. (`perf stat` has no
#    hardware counters on many VMs; callgrind counts the same on any.)
#
#   bench/bench_http.sh [BUILD_DIR]
#   env: ROUNDS (5) SECS (3) CONNS (32) WRK_THREADS (2) THREADS (server pool, 4)
#        CALLGRIND (1; 0 skips part 2) N1 (200) N2 (2200) PH_BIN DAEMON_BIN BASE_BIN
#        CRUD_BIN NGINX (nginx; the nginx+Lua figures are skipped, with the
#        reason, when it or its Lua module is not installed)
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
CRUD_BIN=${CRUD_BIN:-$BUILD/bench/bench_crud_http_baseline}
DAEMON_BIN=${DAEMON_BIN:-$(dirname "$PH_BIN")/plughostd}
NGINX=${NGINX:-nginx}
me=bench_http.sh
command -v wrk >/dev/null || { echo "$me: wrk is not installed; run 'make deps' (Debian package wrk)"; exit 1; }
command -v curl >/dev/null || { echo "$me: curl is not installed; run 'make deps'"; exit 1; }
for b in "$PH_BIN" "$DAEMON_BIN" "$BASE_BIN" "$CRUD_BIN"; do
  [ -x "$b" ] || { echo "$me: $b not found; build first (make build)"; exit 1; }
done
PH_BIN=$(realpath "$PH_BIN"); DAEMON_BIN=$(realpath "$DAEMON_BIN"); BASE_BIN=$(realpath "$BASE_BIN"); CRUD_BIN=$(realpath "$CRUD_BIN")
PKGS=$(cd "$BUILD" && pwd)/packages

tmp=$(mktemp -d)
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; rm -rf "$tmp"' EXIT

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
NEW_BODY='{"title":"bench"}'
post_script() { # file body
  cat > "$1" <<LUA
wrk.method = "POST"
wrk.body = '$2'
wrk.headers["Content-Type"] = "application/json"
LUA
}
post_script "$tmp/add.lua" "$ADD_BODY"
post_script "$tmp/new.lua" "$NEW_BODY"

# nginx with the Lua module and lua-cjson: the conf for a run with $2 workers
# on port $1 (workers 0: one process, no master, for callgrind).
nginx_reason=
ngx_lua=/usr/lib/nginx/modules/ngx_http_lua_module.so
cjson=$(dpkg -L lua-cjson 2>/dev/null | grep '/5\.1/cjson\.so$' | head -1 || true)
if ! command -v "$NGINX" >/dev/null; then nginx_reason="nginx is not installed (make bench-deps)"
elif [ ! -e "$ngx_lua" ]; then nginx_reason="nginx's Lua module is not installed (Debian libnginx-mod-http-lua; make bench-deps)"
elif [ -z "$cjson" ]; then nginx_reason="lua-cjson is not installed (make bench-deps)"
fi
nginx_conf() { # port workers -> conf path
  local conf="$tmp/nginx-$1.conf" procs="worker_processes $2;"
  [ "$2" = 0 ] && procs="worker_processes 1; master_process off;"
  mkdir -p "$tmp/nginx"
  cat > "$conf" <<NGX
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module $ngx_lua;
$procs
daemon off;
pid $tmp/nginx/nginx-$1.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  lua_package_cpath "$(dirname "$cjson")/?.so;;";
  server {
    listen 127.0.0.1:$1;
    location / {
      default_type application/json;
      content_by_lua_block {
        local cjson = require "cjson"
        ngx.req.read_body()
        local t = cjson.decode(ngx.req.get_body_data())
        ngx.print(t.a + t.b)
      }
    }
  }
}
NGX
  echo "$conf"
}

# ---- 1. wrk A/B rounds ----

BPORT=$(free_port); PPORT=$(free_port); CPORT=$(free_port); NPORT=$(free_port)
"$BASE_BIN" "$BPORT" "$THREADS" & pids+=($!); BPID=$!
"$CRUD_BIN" "$CPORT" "$tmp/crud-baseline.db" "$THREADS" & pids+=($!); CPID=$!
write_ini "$PPORT" "$tmp/data"
"$PH_BIN" run -c "$tmp/host-$PPORT.ini" 2>"$tmp/host.log" & pids+=($!); PHPID=$!
NPID=
if [ -z "$nginx_reason" ]; then
  "$NGINX" -p "$tmp/nginx" -c "$(nginx_conf "$NPORT" 2)" & pids+=($!); NPID=$!
fi
wait_http "$BPORT" /
wait_http "$CPORT" /notes/models/note/1
wait_http "$PPORT" "/_/health?ready"
[ "$(curl -s -X POST -H 'Content-Type: application/json' -d "$ADD_BODY" "http://127.0.0.1:$PPORT/calc/actors/math/add")" = 42 ] \
  || { echo "$me: calc.math.add does not answer 42"; cat "$tmp/host.log"; exit 1; }
if [ -n "$NPID" ]; then
  for _ in $(seq 100); do curl -sf -o /dev/null -d "$ADD_BODY" "http://127.0.0.1:$NPORT/x" && break; sleep 0.1; done
  [ "$(curl -s -d "$ADD_BODY" "http://127.0.0.1:$NPORT/x")" = 42 ] \
    || { nginx_reason="nginx+Lua does not answer 42: $(cat "$tmp/nginx/error.log" 2>/dev/null | tail -2)"; }
fi
crud_path=$(make_note "$PPORT" || true)
[ -n "$crud_path" ] && curl -s -f -o /dev/null "http://127.0.0.1:$PPORT$crud_path" || crud_path=""

# CPU clock ticks (user + system) used so far by process $1 and its children
# (nginx's workers; plughost's threads are in its own figure).
cpu_ticks() {
  local p
  { cat "/proc/$1/stat"; for p in $(ps -o pid= --ppid "$1"); do cat "/proc/$p/stat" 2>/dev/null; done; } |
    awk '{ sub(/.*\) /, ""); t += $12 + $13 } END { print t + 0 }'
}
HZ=$(getconf CLK_TCK)

# run_wrk URL PID [script] -> "req_per_s p99_ms cpu_us_per_request"
run_wrk() {
  local out rps p99 n t0 t1
  t0=$(cpu_ticks "$2")
  out=$(timeout $((SECS + 30)) wrk -t"$WRK_THREADS" -c"$CONNS" -d"${SECS}s" --latency ${3:+-s "$3"} "$1")
  t1=$(cpu_ticks "$2")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' <<<"$out")
  echo "$rps $p99 $(awk -v a="$t0" -v b="$t1" -v n="$n" -v hz="$HZ" 'BEGIN {print n ? (b - a) / hz * 1e6 / n : 0}')"
}

# bench_case NAME PH_URL BASE_URL BASE_PID BASE_LABEL SCRIPT RPS_TARGET P99_TARGET [CPU_TARGET]
# (an empty target prints the ratio without a verdict)
bench_case() {
  local name=$1 url=$2 burl=$3 bpid=$4 label=$5 script=$6 r b p brps bp99 bcpu prps pp99 pcpu
  : > "$tmp/r_rps"; : > "$tmp/r_p99"; : > "$tmp/r_cpu"
  printf '%-16s vs %s\n%-16s round  base req/s  ph req/s   base p99  ph p99 (ms)  base CPU  ph CPU (us/req)\n' \
    "$name" "$label" ""
  for r in $(seq "$ROUNDS"); do
    if (( r % 2 )); then b=$(run_wrk "$burl" "$bpid" "$script"); p=$(run_wrk "$url" "$PHPID" "$script");
    else p=$(run_wrk "$url" "$PHPID" "$script"); b=$(run_wrk "$burl" "$bpid" "$script"); fi
    read -r brps bp99 bcpu <<<"$b"; read -r prps pp99 pcpu <<<"$p"
    printf '%-16s %5d %11.0f %9.0f %10.3f %7.3f %13.1f %7.1f\n' "" "$r" "$brps" "$prps" "$bp99" "$pp99" "$bcpu" "$pcpu"
    awk -v a="$prps" -v b="$brps" 'BEGIN {print a/b}' >> "$tmp/r_rps"
    awk -v a="$pp99" -v b="$bp99" 'BEGIN {print a/b}' >> "$tmp/r_p99"
    awk -v a="$pcpu" -v b="$bcpu" 'BEGIN {print b ? a/b : 0}' >> "$tmp/r_cpu"
  done
  ratio_figure "http: $name req/s plughost/$label" "$(median < "$tmp/r_rps")" ">=" "$7"
  ratio_figure "http: $name p99 plughost/$label" "$(median < "$tmp/r_p99")" "<=" "$8"
  ratio_figure "http: $name CPU/req plughost/$label" "$(median < "$tmp/r_cpu")" "<=" "${9:-}"
  echo
}
ratio_figure() { # name value cmp [target]
  if [ -n "${4:-}" ]; then figure "$1" "$2" x "$3" "$4"; else printf '  %-46s %9.3fx\n' "$1" "$2"; fi
}

echo "wrk -t$WRK_THREADS -c$CONNS ${SECS}s x $ROUNDS interleaved rounds; server pool $THREADS threads; $(nproc) CPUs"
bench_case calc.math.add "http://127.0.0.1:$PPORT/calc/actors/math/add" "http://127.0.0.1:$BPORT/x" \
  "$BPID" bare "$tmp/add.lua" 0.85 1.5
if [ -n "$nginx_reason" ]; then
  echo "calc.math.add vs nginx+Lua: skipped ($nginx_reason)"
else
  bench_case calc.math.add "http://127.0.0.1:$PPORT/calc/actors/math/add" "http://127.0.0.1:$NPORT/x" \
    "$NPID" nginx+Lua "$tmp/add.lua" "" "" 0.8
fi
if [ -n "$crud_path" ]; then
  bench_case notes.note.get "http://127.0.0.1:$PPORT$crud_path" "http://127.0.0.1:$CPORT/notes/models/note/1" \
    "$CPID" crud "" 0.85 1.5
  bench_case notes.note.new "http://127.0.0.1:$PPORT/notes/models/note" "http://127.0.0.1:$CPORT/notes/models/note" \
    "$CPID" crud "$tmp/new.lua" 0.85 1.5
else
  echo "notes.note.get/new: skipped (no notes example with CRUD in $PKGS)"
fi
stop_all

# ---- 2. instructions per request (callgrind) ----

if [ "$CALLGRIND" = 0 ]; then exit 0; fi
if ! command -v valgrind >/dev/null; then
  echo "instructions/request: skipped (valgrind not installed; Debian package valgrind)"
  exit 0
fi

# Total instructions (Ir) of one server run answering $n requests.
# args: kind(base|crud|nginx|ph) n method path body
callgrind_ir() {
  local kind=$1 n=$2 method=$3 path=$4 body=$5 port out pid ir ready=/x
  port=$(free_port)
  out="$tmp/cg.$kind.$n.$RANDOM"
  local cg=(valgrind --tool=callgrind --callgrind-out-file="$out")
  case "$kind" in
    base) "${cg[@]}" "$BASE_BIN" "$port" "$THREADS" 2>"$out.log" & ;;
    crud) rm -f "$tmp/cg-crud.db"*; ready=/notes/models/note/1
          "${cg[@]}" "$CRUD_BIN" "$port" "$tmp/cg-crud.db" "$THREADS" 2>"$out.log" & ;;
    nginx) "${cg[@]}" "$NGINX" -p "$tmp/nginx" -c "$(nginx_conf "$port" 0)" 2>"$out.log" & ;;
    ph) rm -rf "$tmp/cgdata"; cp -r "$tmp/data" "$tmp/cgdata" # same database, so the note exists
        write_ini "$port" "$tmp/cgdata"; ready="/_/health?ready"
        # the daemon itself: `plughost run` execs it, and callgrind does not follow an exec
        "${cg[@]}" "$DAEMON_BIN" run -c "$tmp/host-$port.ini" 2>"$out.log" & ;;
  esac
  pid=$!
  pids+=("$pid")
  for _ in $(seq 600); do # 60 s: everything is slow under valgrind
    if [ "$kind" = nginx ]; then curl -sf -o /dev/null -d "$ADD_BODY" "http://127.0.0.1:$port$ready" && break
    else curl -sf -o /dev/null "http://127.0.0.1:$port$ready" && break; fi
    sleep 0.1
  done
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
printf '%-16s %-10s %12s %12s %8s\n' case vs baseline plughost ratio
ipr_case() { # name method ph_path body base_kind base_path target
  local base ph r
  base=$(per_request "$5" "$2" "$6" "$4") && ph=$(per_request ph "$2" "$3" "$4") \
    || { echo "$1 vs $5: callgrind run failed"; return 0; }
  r=$(awk -v a="$ph" -v b="$base" 'BEGIN {print a/b}')
  printf '%-16s %-10s %12s %12s %7.2fx\n' "$1" "$5" "$base" "$ph" "$r"
  figure "http: $1 instructions/request plughost/$5" "$r" x "<=" "$7"
}
ipr_case calc.math.add POST /calc/actors/math/add "$ADD_BODY" base /x 1.5
if [ -z "$nginx_reason" ]; then
  ipr_case calc.math.add POST /calc/actors/math/add "$ADD_BODY" nginx /x 1.0
fi
if [ -n "$crud_path" ]; then
  ipr_case notes.note.get GET "$crud_path" "" crud /notes/models/note/1 1.5
fi
