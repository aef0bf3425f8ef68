#!/usr/bin/env bash
# SIGHUP re-reads host.ini: re-parameterised instances restart with the new
# values, added ones start, removed ones stop (data kept), untouched ones keep
# their in-memory state, and a broken file changes nothing.
set -euo pipefail
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/run.log" ] && tail -n 30 "$tmp/run.log"; exit 1; }
mkdir -p "$tmp/pk"
cp -r "$PH_EXAMPLES/hello" "$PH_EXAMPLES/counter" "$tmp/pk/"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
write_config() {
  cat >"$tmp/host.ini" <<INI
[host]
package_dirs = pk
data_dir = data
[http]
listen = 127.0.0.1:$port
$1
INI
}
ph() { "$PH_BIN" -c "$tmp/host.ini" "$@"; }
wait_for() { # wait_for EXPECTED ADDRESS ARGS...
  local want=$1; shift
  for _ in $(seq 1 100); do
    [ "$(ph call "$@" 2>/dev/null)" = "$want" ] && return 0
    sleep 0.1
  done
  fail "$* never answered $want (last: $(ph call "$@" 2>&1))"
}

write_config "[instance hello]
greeting = Hi"
"$PH_BIN" -c "$tmp/host.ini" run >"$tmp/run.log" 2>&1 &
pid=$!
wait_for '"Hi, Ada!"' hello.hello.greet name=Ada
ph call counter.counter.increment by=5 >/dev/null

# the CLI's view of the running host: status, and reload on demand
ph status | grep -qE '^hello +hello +1\.0\.0 +running' || fail "status: $(ph status)"
grep -q '"result":"already running this build"' <<<"$(ph reload hello)" || fail "reload: $(ph reload hello)"
set +e; out=$(ph reload nosuch 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "reload of an unknown package should fail: $out"
grep -q "plughost: not_found: no package or instance 'nosuch' is installed" <<<"$out" || fail "$out"

# re-parameterise hello, add a second instance of it
write_config "[instance hello]
greeting = Yo
[instance hola]
package = hello
greeting = Hola"
kill -HUP "$pid"
wait_for '"Yo, Ada!"' hello.hello.greet name=Ada
wait_for '"Hola, Ada!"' hola.hello.greet name=Ada
[ "$(ph call counter.counter.get)" = 5 ] || fail "counter was restarted by an unrelated change"
grep -q "configuration reloaded: 1 kept, 1 swapped, 1 started, 0 stopped, 0 failed" "$tmp/run.log" || fail "no summary"

# a broken file changes nothing
write_config "[instance hello]
greting_typo_section_key_without_value"
kill -HUP "$pid"
for _ in $(seq 1 50); do grep -q "configuration not reloaded" "$tmp/run.log" && break; sleep 0.1; done
grep -q "configuration not reloaded, the running one stays: .*host.ini:7: expected .key = value." "$tmp/run.log" || fail "bad config not reported with file:line"
[ "$("$PH_BIN" --url "$url" call hola.hello.greet name=Ada)" = '"Hola, Ada!"' ] || fail "bad config changed the running set"

# remove hola
write_config "[instance hello]
greeting = Yo"
kill -HUP "$pid"
for _ in $(seq 1 100); do ph call hola.hello.greet name=Ada >/dev/null 2>&1 || break; sleep 0.1; done
set +e; out=$(ph call hola.hello.greet name=Ada 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "hola still answers: $out"
grep -q "not_found" <<<"$out" || fail "expected not_found, got: $out"
[ "$(ph call hello.hello.greet name=Ada)" = '"Yo, Ada!"' ] || fail "hello lost"
[ "$(ph call counter.counter.get)" = 5 ] || fail "counter lost its state"
kill "$pid"; wait "$pid" || true; pid=
grep -q "stopped cleanly" "$tmp/run.log" || fail "no clean stop"
if grep -E "ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error" "$tmp/run.log" >/dev/null; then
  fail "the server reported a sanitizer error: $(grep -m1 -E 'Sanitizer|runtime error' "$tmp/run.log")"
fi
echo "1 passed, 0 failed"
