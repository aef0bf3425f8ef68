#!/usr/bin/env bash
# No package code in the host before its descriptor is accepted (issue
# "Package faults in process", items 7 and 8): a scanner child loads each
# new build first, so a constructor that crashes, calls exit() or hangs
# costs a refused build, never the host; an accepted build is not scanned
# again at the next start. A package's own library found through
# -rpath '$ORIGIN' (or '$ORIGIN/lib') loads, and a changed one is a new build
# that hot reload picks up. A package exporting a name the host has
# (json_loads) is refused; other exports are logged.
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
E2E_LOG_LINES=30
src="$PH_SOURCE_DIR/tests/scanload"
sdk=(-std=c11 -shared -fPIC -I"$PH_SOURCE_DIR/sdk/include" -DPH_PACKAGE_VERSION='"1.0.0"')
pkg() { # NAME SOURCE [flags...]: a package directory whose package.ini says 1.0.0
  local name=$1 c=$2
  shift 2
  mkdir -p "$tmp/pk/$name"
  printf '[package]\nname = %s\nversion = 1.0.0\n' "$name" >"$tmp/pk/$name/package.ini"
  cc "${sdk[@]}" -DPH_PACKAGE_NAME="\"$name\"" -o "$tmp/pk/$name/$name.so.tmp" "$src/$c" "$@" ||
    fail "cc $name"
  mv "$tmp/pk/$name/$name.so.tmp" "$tmp/pk/$name/$name.so"
}
helper() { # DIR VALUE: libpkghelper.so built into DIR
  mkdir -p "$1"
  cc -shared -fPIC -DHELPER_VALUE="$2" -Wl,-soname,libpkghelper.so -o "$1/libpkghelper.so.tmp" \
    "$src/pkghelper.c" || fail "cc helper"
  mv "$1/libpkghelper.so.tmp" "$1/libpkghelper.so"
}
port=$(free_port)
cat >"$tmp/host.ini" <<INI
[host]
package_dirs = pk
data_dir = data
[http]
listen = 127.0.0.1:$port
INI
ph() { "$PH_BIN" -c "$tmp/host.ini" "$@"; }
wait_for() { # wait_for EXPECTED ADDRESS
  for _ in $(seq 1 150); do
    [ "$(ph call "$2" 2>/dev/null)" = "$1" ] && return 0
    sleep 0.1
  done
  fail "$2 never answered $1 (last: $(ph call "$2" 2>&1))"
}
export PLUGHOST_SCAN_TIMEOUT_MS=1500

# constructors: one with a descriptor the host refuses (version 9.9.9), one accepted,
# and ones that crash, call exit(3) and hang
pkg refused ctor.c -fvisibility=hidden -UPH_PACKAGE_VERSION -DPH_PACKAGE_VERSION='"9.9.9"' \
  -DPID_FILE="\"$tmp/refused.pid\""
pkg accepted ctor.c -fvisibility=hidden -DPID_FILE="\"$tmp/accepted.pid\""
pkg accepted2 ctor.c -fvisibility=hidden -DPID_FILE="\"$tmp/accepted2.pid\""
pkg crasher ctor.c -fvisibility=hidden -DCTOR_DO=1
pkg quitter ctor.c -fvisibility=hidden -DCTOR_DO=2
pkg hanger ctor.c -fvisibility=hidden -DCTOR_DO=3
# its own library beside the .so, and another of the same name in lib/
helper "$tmp/pk/origin" 1
pkg origin origin.c -fvisibility=hidden -L"$tmp/pk/origin" -lpkghelper -Wl,-rpath,'$ORIGIN'
helper "$tmp/pk/originlib/lib" 10
pkg originlib origin.c -fvisibility=hidden -L"$tmp/pk/originlib/lib" -lpkghelper \
  -Wl,-rpath,'$ORIGIN/lib'
# built without -fvisibility=hidden: one with json_loads, one with harmless extras
pkg clash exports.c -DCLASH
pkg extras exports.c

# `plughost check` scans in a child too: no constructor runs in its process
out=$(bash -c 'echo "check pid $$"; exec "$0" -c "$1" check' "$PH_BIN" "$tmp/host.ini" 2>&1 || true)
check_pid=$(sed -n 's/^check pid //p' <<<"$out")
grep -q "the scanner crashed with SIGSEGV while reading package 'crasher' 1.0.0" <<<"$out" || fail "check: $out"
grep -q "the scanner called exit(3) while reading package 'quitter' 1.0.0" <<<"$out" || fail "check: $out"
grep -q "the scanner did not answer within 1500 ms (killed) while reading package 'hanger' 1.0.0" \
  <<<"$out" || fail "check: $out"
# one scanner child reads package after package; after a crash or a hang a new one goes on
grep -q "extras           extras 1.0.0  \[ok\]" <<<"$out" || fail "check after a crash: $out"
grep -q "originlib        originlib 1.0.0  \[ok\]" <<<"$out" || fail "check after a hang: $out"
[ "$(cat "$tmp/accepted.pid")" = "$(cat "$tmp/accepted2.pid")" ] ||
  fail "check forked a scanner child per package: $(cat "$tmp/accepted.pid" "$tmp/accepted2.pid")"
grep -q "package 'clash': .*/clash.so exports 1 symbol the host already has (json_loads)" <<<"$out" ||
  fail "check: $out"
! grep -qx "$check_pid" "$tmp/refused.pid" "$tmp/accepted.pid" || fail "a constructor ran in check's process"
rm -f "$tmp/refused.pid" "$tmp/accepted.pid" "$tmp/accepted2.pid"

"$PH_BIN" -c "$tmp/host.ini" run >"$tmp/run.log" 2>&1 &
pid=$!
wait_for 1 origin.helper.value
wait_for 10 originlib.helper.value
[ "$(ph call accepted.ctor.one)" = 1 ] || fail "the accepted package does not answer"
[ "$(ph call extras.exports.one)" = 1 ] || fail "the package with extra exports does not answer"
curl -fsS "http://127.0.0.1:$port/_/health" >/dev/null || fail "health"

# the refused descriptor: its constructor ran only in the scanner child, never in the host
grep -q "refused: package 'refused': the .so is version 9.9.9 but .*package.ini says version 1.0.0" "$tmp/run.log" ||
  fail "no refusal of the descriptor in the log"
[ -s "$tmp/refused.pid" ] || fail "the scanner child did not load the refused package"
! grep -qx "$pid" "$tmp/refused.pid" || fail "the refused package's constructor ran in the host (pid $pid)"
# the accepted one: first in the scanner child, then in the host
[ "$(wc -l <"$tmp/accepted.pid")" = 2 ] || fail "accepted.pid: $(cat "$tmp/accepted.pid")"
[ "$(tail -n 1 "$tmp/accepted.pid")" = "$pid" ] && [ "$(head -n 1 "$tmp/accepted.pid")" != "$pid" ] ||
  fail "accepted.pid: $(cat "$tmp/accepted.pid"), host $pid"
b='build [0-9a-f]\{16\}'
for what in "crasher' 1.0.0 (.*/crasher.so, $b) crashed with SIGSEGV while loading" \
  "quitter' 1.0.0 (.*/quitter.so, $b) called exit(3) while loading" \
  "hanger' 1.0.0 (.*/hanger.so, $b) did not answer within 1.5 s (killed) while loading"; do
  grep -q "package '$what, in a scanner child: the host did not load it; a package must not run code when it is loaded" "$tmp/run.log" ||
    fail "no refusal: $what"
done
grep -q "clash: package 'clash': .*/clash.so exports 1 symbol the host already has (json_loads): the package's own calls to it would run the host's copy; build it with -fvisibility=hidden (plughost_add_package does) or make it static" "$tmp/run.log" ||
  fail "no refusal of json_loads"
grep -q "package 'extras': .*/extras.so exports 2 symbols besides its descriptor (extra_one, extra_two); build it with -fvisibility=hidden" "$tmp/run.log" ||
  fail "no warning about extra exports"
ph status | grep -qE '^crasher +crasher +1\.0\.0 +failed' || fail "status: $(ph status)"

# a changed helper library is a new build: hot reload loads it (the old one is still mapped)
helper "$tmp/pk/origin" 2
wait_for 2 origin.helper.value
helper "$tmp/pk/originlib/lib" 20
wait_for 20 originlib.helper.value
[ "$(ph call origin.helper.value)" = 2 ] || fail "origin and originlib share a helper name, not a library"
# a new build whose constructor crashes: refused by the scanner, the running build keeps serving
pkg accepted ctor.c -fvisibility=hidden -DCTOR_DO=1
for _ in $(seq 1 150); do
  grep -q "package 'accepted' 1.0.0 (.*, build [0-9a-f]\{16\}) crashed with SIGSEGV while loading" "$tmp/run.log" && break
  sleep 0.1
done
grep -q "package 'accepted' 1.0.0 (.*, build [0-9a-f]\{16\}) crashed with SIGSEGV while loading" "$tmp/run.log" ||
  fail "the crashing new build of 'accepted' was not refused"
[ "$(ph call accepted.ctor.one)" = 1 ] || fail "the running build of 'accepted' stopped serving"
kill -0 "$pid" || fail "the host died"
pkg accepted ctor.c -fvisibility=hidden -DPID_FILE="\"$tmp/accepted.pid\""
pkg accepted2 ctor.c -fvisibility=hidden -DPID_FILE="\"$tmp/accepted2.pid\""
kill "$pid"
wait "$pid" || true
pid=

# a restart: accepted builds are not scanned again (the host alone runs the constructor)
rm -f "$tmp/accepted.pid"
"$PH_BIN" -c "$tmp/host.ini" run >"$tmp/run.log" 2>&1 &
pid=$!
wait_for 1 accepted.ctor.one
[ "$(cat "$tmp/accepted.pid")" = "$pid" ] || fail "accepted.pid after restart: $(cat "$tmp/accepted.pid"), host $pid"
wait_for 2 origin.helper.value
echo "1 passed, 0 failed"
