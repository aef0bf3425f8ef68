#!/usr/bin/env bash
# A crash in package code: the host names the package, version, build,
# instance and method, appends the line to <data_dir>/crashes.log, and ends
# with the real signal (for a supervisor to restart it).
set -euo pipefail
if [ "${PH_SANITIZE:-0}" = 1 ]; then
  echo "sanitizer build: ASan reports crashes itself; skipped"; exit 77
fi
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
mkdir -p "$tmp/pk"
cp -r "$PH_FIXTURES/core_crash" "$tmp/pk/"
ph() { "$PH_BIN" --packages "$tmp/pk" --data-dir "$tmp/data" --log-level error "$@"; }

[ "$(ph call --local core_crash.boom.fine)" = 1 ] || fail "the package does not load"
set +e; out=$(ph call --local core_crash.boom.now 2>&1); rc=$?; set -e
[ $rc = 139 ] || fail "expected death by SIGSEGV (139), got $rc: $out"
grep -q "plughost: SIGSEGV (invalid memory access) in package 'core_crash' 1.0.0 (build [0-9a-f]\{16\}), instance 'core_crash', in boom.now; the host stops" <<<"$out" \
  || fail "crash report: $out"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$PH_BIN" --packages "$tmp/pk" --data-dir "$tmp/data" run --listen "127.0.0.1:$port" >"$tmp/run.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do curl -sf -o /dev/null "http://127.0.0.1:$port/_/health?ready" && break; sleep 0.1; done
curl -s -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$port/core_crash/actors/boom/now" >/dev/null || true
set +e; wait "$pid"; rc=$?; set -e; pid=
[ $rc = 139 ] || fail "run should die by SIGSEGV, got $rc"
grep -q "in package 'core_crash' 1.0.0 (build [0-9a-f]\{16\}), instance 'core_crash', in boom.now" "$tmp/data/crashes.log" \
  || fail "no journal line: $(cat "$tmp/data/crashes.log" 2>/dev/null)"
grep -q "SIGSEGV" "$tmp/run.log" || fail "run did not report the crash"

# two more crashes of the same build: the third quarantines it
start_run() {
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$PH_BIN" --packages "$tmp/pk" --data-dir "$tmp/data" run --listen "127.0.0.1:$port" >"$tmp/run.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do curl -sf -o /dev/null "http://127.0.0.1:$port/_/health?ready" && return 0; sleep 0.1; done
  fail "host did not come up: $(cat "$tmp/run.log")"
}
for _ in 1 2; do
  start_run
  curl -s -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$port/core_crash/actors/boom/now" >/dev/null || true
  set +e; wait "$pid"; set -e; pid=
done
[ "$(grep -c "in package 'core_crash'" "$tmp/data/crashes.log")" = 3 ] || fail "expected 3 journal lines"
start_run
u="http://127.0.0.1:$port"
grep -q "quarantined: build [0-9a-f]\{16\} crashed the host 3 times in the last 10 minutes" \
  <<<"$(curl -s "$u/_/packages")" || fail "not quarantined: $(curl -s "$u/_/packages")"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' "$u/core_crash/actors/boom/fine")
[ "$code" = 503 ] || fail "a quarantined instance answered $code: $(cat "$tmp/body")"
# a new build is not quarantined: the watcher loads it and the instance runs again
cp "$tmp/pk/core_crash/core_crash.so" "$tmp/new.so"
printf 'rebuilt' >>"$tmp/new.so"
mv "$tmp/new.so" "$tmp/pk/core_crash/core_crash.so"
for _ in $(seq 1 50); do
  [ "$(curl -s -X POST -H 'Content-Type: application/json' "$u/core_crash/actors/boom/fine")" = 1 ] && break
  sleep 0.1
done
[ "$(curl -s -X POST -H 'Content-Type: application/json' "$u/core_crash/actors/boom/fine")" = 1 ] || fail "the new build was not started"
kill "$pid"; wait "$pid" || true; pid=

# A new build that crashes the host during a hot reload is blamed (its own
# build, not the one serving), and the next start runs the last good build
# instead of failing the instance; a fixed build replaces it.
rm -rf "$tmp/pk"/* "$tmp/data"
build_crashy() { # TAG [cflags]
  local tag=$1
  shift
  cc -std=c11 -shared -fPIC -fvisibility=hidden -I"$PH_SOURCE_DIR/sdk/include" \
    -DPH_PACKAGE_NAME='"crashy"' -DPH_PACKAGE_VERSION='"1.0.0"' -DTAG="$tag" "$@" \
    -o "$tmp/crashy.so" "$PH_SOURCE_DIR/tests/lifecycle/crashy.c"
  mv "$tmp/crashy.so" "$tmp/pk/crashy/crashy.so"
}
fnv() { python3 -c 'import sys
h = 1469598103934665603
for b in open(sys.argv[1], "rb").read():
    h = ((h ^ b) * 1099511628211) & 0xffffffffffffffff
print("%016x" % h)' "$1"; }
mkdir -p "$tmp/pk/crashy"
printf '[package]\nname = crashy\nversion = 1.0.0\n' >"$tmp/pk/crashy/package.ini"
build_crashy 1
start_run
u="http://127.0.0.1:$port"
[ "$(curl -s -X POST -H "Content-Type: application/json" -d "{}" "$u/crashy/actors/crashy/tag")" = 1 ] || fail "crashy 1 does not serve"
kill "$pid"; wait "$pid" || true; pid= # a clean stop: build 1 is proven
start_run
u="http://127.0.0.1:$port"
build_crashy 2 -DCRASH_IN_PREPARE
bad=$(fnv "$tmp/pk/crashy/crashy.so")
set +e; wait "$pid"; rc=$?; set -e; pid=
[ $rc = 139 ] || fail "the reload of a crashing build should kill the host by SIGSEGV, got $rc"
grep -q "SIGSEGV (invalid memory access) in package 'crashy' 1.0.0 (build $bad), instance 'crashy', in prepare" "$tmp/run.log" \
  || fail "the crash must name the new build $bad: $(grep SIGSEGV "$tmp/run.log")"
start_run
u="http://127.0.0.1:$port"
[ "$(curl -s -X POST -H "Content-Type: application/json" -d "{}" "$u/crashy/actors/crashy/tag")" = 1 ] || fail "the last good build should serve: $(cat "$tmp/run.log")"
grep -q "crashy: build [0-9a-f]\{16\} of crashy 1.0.0 crashed the host before it was proven (see <data_dir>/crashes.log); running the last good build, crashy 1.0.0 from $tmp/data/.builds/crashy/" "$tmp/run.log" \
  || fail "no fallback message: $(cat "$tmp/run.log")"
# neither SIGHUP nor an explicit reload brings the crashing build back
kill -HUP "$pid"
sleep 1
kill -0 "$pid" 2>/dev/null || fail "SIGHUP loaded the build that crashed: $(tail -3 "$tmp/run.log")"
[ "$(curl -s -X POST -H "Content-Type: application/json" -d "{}" "$u/crashy/actors/crashy/tag")" = 1 ] || fail "after SIGHUP"
tok=$(cat "$tmp/data/admin.token")
out=$(curl -s -X POST -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' -d '{}' "$u/_/reload/crashy")
grep -q "on disk crashed the host before it was proven (see <data_dir>/crashes.log); the last good build, crashy 1.0.0, runs until a new build arrives" <<<"$out" \
  || fail "reload of the crashing build: $out"
kill -0 "$pid" 2>/dev/null || fail "reload loaded the build that crashed"
build_crashy 3
for _ in $(seq 1 60); do
  [ "$(curl -s -X POST -H "Content-Type: application/json" -d "{}" "$u/crashy/actors/crashy/tag")" = 3 ] && break
  sleep 0.1
done
[ "$(curl -s -X POST -H "Content-Type: application/json" -d "{}" "$u/crashy/actors/crashy/tag")" = 3 ] || fail "a fixed build should replace the fallback"
kill "$pid"; wait "$pid" || true; pid=
echo "1 passed, 0 failed"
