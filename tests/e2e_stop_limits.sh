#!/usr/bin/env bash
# stop() under limits (issue "Package faults in process", the attacker's
# findings 4 and 6): a stop() that never returns is given up after
# [limits] stop_timeout (the host names the package and build, keeps its
# code mapped, marks the instance failed and carries on: shutdown ends
# with exit status 1, management keeps answering); a second SIGTERM ends a
# slow shutdown at once; stop() never runs under a call of the same build
# still running past its time limit, and the message names that call.
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
src="$PH_SOURCE_DIR/tests/containment"
token=stop-limits-token-0123456789abcdef
pkg() { # NAME SOURCE [package.ini lines]
  mkdir -p "$tmp/pk/$1"
  printf '[package]\nname = %s\nversion = 1.0.0\n%b' "$1" "${3:-}" >"$tmp/pk/$1/package.ini"
  cc -std=c11 -shared -fPIC -fvisibility=hidden -I"$PH_SOURCE_DIR/sdk/include" \
    -DPH_PACKAGE_NAME="\"$1\"" -DPH_PACKAGE_VERSION='"1.0.0"' -o "$tmp/pk/$1/$1.so" "$src/$2" ||
    fail "cc $1"
}
config() { # [limits] stop_timeout
  port=$(free_port)
  url="http://127.0.0.1:$port"
  cat >"$tmp/host.ini" <<INI
[host]
package_dirs = $tmp/pk
data_dir = $tmp/data
reload = false
[http]
listen = 127.0.0.1:$port
connection_timeout = 1
[limits]
stop_timeout = $1
[auth]
token = $token
INI
}
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}'; }
ended_within() { # SECONDS: waits for $pid to end, at most SECONDS; sets rc
  local t0
  t0=$(date +%s.%N)
  for _ in $(seq 1 $(($1 * 20))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$pid" 2>/dev/null && fail "the host did not end within $1 s"
  set +e; wait "$pid"; rc=$?; set -e
  pid=
  echo "  ended after $(since "$t0") s, exit status $rc"
}

pkg wedge wedge.c "[parameters]\nrelease = $tmp/never\n"
pkg stuck stuck.c "[parameters]\nrelease = $tmp/release\n[limits]\nslow.hold = 1\n"

# 1. a disable whose stop() never returns answers after the limit; the host keeps answering
config 1
start_host -c "$tmp/host.ini"
wait_ready "$url"
t0=$(date +%s.%N)
out=$(curl -s -m 20 -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$url/_/disable/wedge" -d '{}')
t=$(since "$t0")
awk -v t="$t" 'BEGIN {exit !(t < 5)}' || fail "disable took $t s with a stop() that never returns: $out"
grep -q "error wedge: package 'wedge' build [0-9a-f]\{16\}: stop() did not return within 1 s; its code stays mapped and instance 'wedge' is marked failed; make stop() return (signal and join your threads, never wait without a time limit), or raise \[limits\] stop_timeout" "$tmp/run.log" \
  || fail "no word of the stop() past its limit: $(cat "$tmp/run.log")"
curl -sf -m 2 -o /dev/null "$url/_/health" || fail "/_/health does not answer after the wedged stop()"
[ "$("$PH_BIN" call --url "$url" stuck.slow.quick)" = 1 ] || fail "the other instance does not answer"
echo "  disable with a stop() that never returns answered after $t s"
stop_host

# 2. shutdown: the stop() past its limit is named, a call past its limit keeps stop() from
#    running under it (named), the others stop, and the exit status says it was not clean
rm -rf "$tmp/data"
config 1
start_host -c "$tmp/host.ini"
wait_ready "$url"
curl -s -m 30 -X POST -H 'Content-Type: application/json' "$url/stuck/actors/slow/hold" -d '{"seconds":60}' >"$tmp/hold.out" &
holder=$!
for _ in $(seq 1 100); do grep -q "stuck.slow.hold ran past its time limit" "$tmp/run.log" && break; sleep 0.05; done
wait "$holder" || true
grep -qF "stuck.slow.hold ran past its time limit of 1 s" "$tmp/hold.out" || fail "the hold was not answered 504: $(cat "$tmp/hold.out")"
kill -TERM "$pid"
ended_within 10
[ "$rc" = 1 ] || fail "a shutdown with a stop() past its limit ended with $rc, not 1"
grep -q "error wedge: package 'wedge' build [0-9a-f]\{16\}: stop() did not return within 1 s; its code stays mapped" "$tmp/run.log" ||
  fail "shutdown: no word of wedge's stop(): $(cat "$tmp/run.log")"
grep -q "error stuck: package 'stuck' build [0-9a-f]\{16\}: stop() not run: stuck.slow.hold is still running past its time limit (its caller was answered 504); stop() must not run under it, so the build stays mapped and keeps what it holds" "$tmp/run.log" ||
  fail "shutdown: stop() of stuck ran under its running call, or the call is not named: $(cat "$tmp/run.log")"
grep -q "stuck stopped" "$tmp/run.log" && fail "stop() of stuck ran under its running call"
grep -q "stopped cleanly" "$tmp/run.log" && fail "an unclean shutdown said 'stopped cleanly'"

# 3. a second SIGTERM ends a slow shutdown at once, saying what it did not wait for
rm -rf "$tmp/data"
pkg wedge wedge.c "[parameters]\nrelease = $tmp/never\n[limits]\nstop_timeout = 60\n"
config 1
start_host -c "$tmp/host.ini"
wait_ready "$url"
kill -TERM "$pid"
for _ in $(seq 1 100); do grep -q "SIGTERM received: stopping" "$tmp/run.log" && break; sleep 0.05; done
sleep 0.3
kill -TERM "$pid"
ended_within 3
[ "$rc" = 1 ] || fail "the second SIGTERM ended the host with $rc, not 1"
grep -qF "error SIGTERM received again during the shutdown: exiting now without waiting for 'wedge' to stop, exit status 1" "$tmp/run.log" ||
  fail "no line for the second SIGTERM: $(cat "$tmp/run.log")"

# 4. a reload whose old build's stop() never returns: the answer and status say so, the old
#    build stays mapped, and the shutdown is not clean (exit status 1)
rm -rf "$tmp/data"
pkg wedge wedge.c "[parameters]\nrelease = $tmp/never\n"
config 1
start_host -c "$tmp/host.ini"
wait_ready "$url"
old=$(curl -s "$url/_/packages" | python3 -c 'import json,sys
print(next(i.get("build","") for i in json.load(sys.stdin)["instances"] if i["instance"] == "wedge"))')
cc -std=c11 -O2 -shared -fPIC -fvisibility=hidden -I"$PH_SOURCE_DIR/sdk/include" -DPH_PACKAGE_NAME='"wedge"' \
  -DPH_PACKAGE_VERSION='"1.0.0"' -o "$tmp/pk/wedge/.wedge.so" "$src/wedge.c" || fail "cc wedge 2"
mv "$tmp/pk/wedge/.wedge.so" "$tmp/pk/wedge/wedge.so"
out=$("$PH_BIN" -c "$tmp/host.ini" reload --url "$url" wedge 2>&1) || fail "reload: $out"
hung="package 'wedge' build $old: stop() did not return within 1 s; its code stays mapped (stop() may still run in it) and the host will not stop cleanly"
grep -qF "\"result\":\"reloaded, but code of package 'wedge' still runs after stop()\"" <<<"$out" || fail "reload answer: $out"
grep -qF "$hung" <<<"$out" || fail "the reload answer does not name the stop() past its limit: $out"
[ "$("$PH_BIN" call --url "$url" wedge.wedge.one)" = 1 ] || fail "the new build does not serve"
out=$("$PH_BIN" -c "$tmp/host.ini" status --url "$url" 2>&1)
grep -qF "$hung" <<<"$out" || fail "status does not show the stop() past its limit: $out"
kill -TERM "$pid"
ended_within 30
[ "$rc" = 1 ] || fail "a shutdown after a reload whose stop() never returned ended with $rc, not 1"
grep -qF "error $hung" "$tmp/run.log" || fail "shutdown: no word of the earlier stop(): $(cat "$tmp/run.log")"
grep -q "stopped cleanly" "$tmp/run.log" && fail "an unclean shutdown said 'stopped cleanly'"
echo "1 passed, 0 failed"
