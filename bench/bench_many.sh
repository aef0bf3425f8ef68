#!/usr/bin/env bash
# 1,000 packages with models start under a soft open-file limit of 1024
# (issue "Package faults in process", acceptance 5): the host raises the
# soft limit to the hard one before loading anything. Prints the time to
# readiness, the instances running, descriptors and RSS; fails unless all
# 1,000 run. Bounded: the packages compile in about a minute on two cores,
# the host gets at most five minutes to be ready.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
build=${1:-build}
src=$(cd "$(dirname "$0")/.." && pwd)
bin="$build/plughost"
n=${PH_BENCH_PACKAGES:-1000}
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge $((n * 4 + 256)) ] || {
  echo "bench_many: the hard open-file limit ($(ulimit -Hn)) is below what $n packages need; skipped"
  exit 0
}
seq 1 "$n" | xargs -P "$(nproc)" -I{} sh -c '
  d="$1/pk/m$2"; mkdir -p "$d"
  printf "[package]\nname = m%s\nversion = 1.0.0\n" "$2" >"$d/package.ini"
  cc -std=c11 -shared -fPIC -fvisibility=hidden -I"$3/sdk/include" -DPH_PACKAGE_NAME="\"m$2\"" \
    -DPH_PACKAGE_VERSION="\"1.0.0\"" -o "$d/m$2.so" "$3/tests/lifecycle/shop.c"' _ "$tmp" {} "$src"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
t0=$(date +%s%N)
( ulimit -Sn 1024; exec "$bin" --packages "$tmp/pk" --data-dir "$tmp/data" --log-level warn run \
  --listen "127.0.0.1:$port" >"$tmp/run.log" 2>&1 ) &
pid=$!
ready=
for _ in $(seq 1 3000); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/_/health?ready" && { ready=1; break; }
  sleep 0.1
done
t1=$(date +%s%N)
[ -n "$ready" ] || { tail -5 "$tmp/run.log"; echo "bench_many: not ready within 300 s"; exit 1; }
health=$(curl -s "http://127.0.0.1:$port/_/health")
running=$(grep -o '"running"' <<<"$health" | wc -l)
fds=$(ls "/proc/$pid/fd" | wc -l)
soft=$(awk '/Max open files/ {print $4}' "/proc/$pid/limits")
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
ms=$(((t1 - t0) / 1000000))
echo "$n model packages started under a soft open-file limit of 1024 (raised to $soft): $running running," \
  "ready in $ms ms ($((ms * 1000 / n)) us per instance), $fds descriptors open, RSS $((rss / 1024)) MiB"
figure "many: model packages running, soft limit 1024" "$running" "" ">=" "$n"
[ "$running" = "$n" ] || { grep -m3 error "$tmp/run.log"; echo "bench_many: only $running of $n running"; exit 1; }
