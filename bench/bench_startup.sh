#!/usr/bin/env bash
# Start-up (issue 17, item 6), all in one run:
#  1. 1,000 packages without models against the floor, a program that only
#     dlopen()s and dlsym()s the same 1,000 files (bench_dlopen_floor):
#     `plughost check` and `plughost run` to ready (GET /_/health?ready),
#     with a data directory from an earlier start (verdicts cached), median
#     of ROUNDS interleaved rounds each; the ratios are medians of per-round
#     ratios. Also the descriptors the running host holds at ready.
#  2. 400 packages with a model: first start (empty data directory) and a
#     restart, to ready.
# Bounded: compiling the packages takes about a minute on two cores; every
# wait for readiness has a limit.
#   env: ROUNDS (5) N (1000) NM (400)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
build=${1:-build}
src=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "$build/plughost")
floor=$(realpath "$build/bench/bench_dlopen_floor")
rounds=${ROUNDS:-5}
n=${N:-1000}
nm=${NM:-400}
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge $((n * 4 + 256)) ] || {
  echo "bench_startup: the hard open-file limit ($(ulimit -Hn)) is below what $n packages need; skipped"
  exit 0
}
# pkgs DIR PREFIX COUNT SOURCE
pkgs() {
  seq 1 "$3" | xargs -P "$(nproc)" -I{} sh -c '
    d="$1/$2$3"; mkdir -p "$d"
    printf "[package]\nname = %s%s\nversion = 1.0.0\n" "$2" "$3" >"$d/package.ini"
    cc -std=c11 -O1 -shared -fPIC -fvisibility=hidden -I"$4/sdk/include" -DPH_PACKAGE_NAME="\"$2$3\"" \
      -DPH_PACKAGE_VERSION="\"1.0.0\"" -o "$d/$2$3.so" "$4/$5"' _ "$1" "$2" {} "$src" "$4"
}
pkgs "$tmp/pk" p "$n" tests/lifecycle/shout.c
pkgs "$tmp/mk" m "$nm" tests/lifecycle/shop.c
find "$tmp/pk" -name '*.so' | sort >"$tmp/sos"
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# run_ready PKGDIR DATADIR -> ms to ready; leaves the descriptors count in $tmp/fds
run_ready() {
  local p t0 t1
  p=$(free_port)
  t0=$(now_ms)
  "$bin" --packages "$1" --data-dir "$2" --log-level error run --listen "127.0.0.1:$p" >>"$tmp/run.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 6000); do
    curl -sf -o /dev/null "http://127.0.0.1:$p/_/health?ready" && break
    kill -0 "$pid" 2>/dev/null || { tail -5 "$tmp/run.log"; echo "bench_startup: the host exited"; exit 1; }
    sleep 0.005
  done
  t1=$(now_ms)
  curl -sf -o /dev/null "http://127.0.0.1:$p/_/health?ready" || { echo "bench_startup: not ready within 30 s"; exit 1; }
  ls "/proc/$pid/fd" | wc -l >"$tmp/fds"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  echo $((t1 - t0))
}
check_ms() {
  local t0 t1
  t0=$(now_ms)
  "$bin" --packages "$tmp/pk" --data-dir "$tmp/data" --log-level error check >/dev/null 2>&1 || true
  t1=$(now_ms)
  echo $((t1 - t0))
}
cold_ms=$(run_ready "$tmp/pk" "$tmp/data") # the data directory's first start (verdicts cached after)
check_ms >/dev/null
: >"$tmp/r_check"; : >"$tmp/r_run"; : >"$tmp/floor"; : >"$tmp/check"; : >"$tmp/run"
for r in $(seq "$rounds"); do
  f=$("$floor" - <"$tmp/sos")
  c=$(check_ms)
  s=$(run_ready "$tmp/pk" "$tmp/data")
  echo "$f" >>"$tmp/floor"; echo "$c" >>"$tmp/check"; echo "$s" >>"$tmp/run"
  awk -v a="$c" -v b="$f" 'BEGIN {print a/b}' >>"$tmp/r_check"
  awk -v a="$s" -v b="$f" 'BEGIN {print a/b}' >>"$tmp/r_run"
done
fds=$(cat "$tmp/fds")
echo "$n packages without models, $rounds interleaved rounds (medians): dlopen+dlsym floor" \
  "$(median <"$tmp/floor") ms, check $(median <"$tmp/check") ms, run to ready $(median <"$tmp/run") ms" \
  "(first start of the data directory: $cold_ms ms); $fds descriptors open at ready"
figure "startup: check / dlopen floor, $n packages" "$(median <"$tmp/r_check")" x "<=" 3
figure "startup: run to ready / dlopen floor" "$(median <"$tmp/r_run")" x "<=" 5
figure "startup: descriptors held at ready, $n packages" "$fds" "" "<=" 64
first=$(run_ready "$tmp/mk" "$tmp/mdata")
again=$(run_ready "$tmp/mk" "$tmp/mdata")
echo "$nm model packages: first start $first ms, restart $again ms, $(cat "$tmp/fds") descriptors open"
figure "startup: restart of $nm model packages" "$again" ms "<=" 1000
