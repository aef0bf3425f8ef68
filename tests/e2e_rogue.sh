#!/usr/bin/env bash
# Package faults in process, the second attacker's findings, on the real
# binary (fixture tests/containment/rogue.c):
#   1. a constructor that hangs only in the host's dlopen: reported,
#      journaled, quarantined, exit status 75; the next start refuses the
#      build and serves the rest; a second SIGTERM during the hang ends the
#      host at once;
#   2. a thread started by a constructor is counted: a reload keeps that
#      build mapped and says so, instead of crashing;
#   3. exit handlers that would outlive the build (on_exit, at_quick_exit)
#      are refused; atexit() runs when the build is unloaded;
#   4. signals to the host, syscall(SYS_exit_group) and exec are refused
#      with EPERM, reported and journaled against the package;
#   5. pthread_exit() in a method ends the call (500), not the host's
#      thread, and the instance's concurrency slots come back.
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
pkg() { # NAME [CFLAGS...]: builds beside, then renames (a reload never sees half a file)
  local name=$1
  shift
  mkdir -p "$tmp/pk/$name"
  printf '[package]\nname = %s\nversion = 1.0.0\n' "$name" >"$tmp/pk/$name/package.ini"
  cc -std=c11 -shared -fPIC -fvisibility=hidden -pthread -I"$PH_SOURCE_DIR/sdk/include" \
    -DPH_PACKAGE_NAME="\"$name\"" -DPH_PACKAGE_VERSION='"1.0.0"' "$@" \
    -o "$tmp/pk/$name/.$name.so" "$PH_SOURCE_DIR/tests/containment/rogue.c" || fail "cc $name"
  mv "$tmp/pk/$name/.$name.so" "$tmp/pk/$name/$name.so"
}
config() { # [limits] load_timeout
  port=$(free_port)
  url="http://127.0.0.1:$port"
  printf '[host]\nreload = false\npackage_dirs = %s/pk\ndata_dir = %s/data\n[http]\nlisten = 127.0.0.1:%s\n[limits]\nload_timeout = %s\n' \
    "$tmp" "$tmp" "$port" "$1" >"$tmp/host.ini"
}
ph() { "$PH_BIN" -c "$tmp/host.ini" "$@"; }
post() { curl -s -m 60 -X POST -H 'Content-Type: application/json' -d '{}' "$url/rogue/actors/rogue/$1"; }
ended_within() { # SECONDS: waits for $pid to end, at most SECONDS (polled); sets rc
  for _ in $(seq 1 $(($1 * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && fail "the host did not end within $1 s"
  set +e; wait "$pid"; rc=$?; set -e
  pid=
}
wait_for() { # FILE PATTERN SECONDS
  for _ in $(seq 1 $(($3 * 10))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  fail "no '$2' in $1 within $3 s: $(cat "$1" 2>&1)"
}
export ROGUE_MARK="$tmp/mark"
build_re='\(build [0-9a-f]{16}\)'

# ---- 3, 4, 5: a running host refuses, reports and journals; it keeps serving ----
pkg rogue
config 10
ROGUE_MARK="$tmp/mark" start_host -c "$tmp/host.ini"
wait_ready "$url"
expect_refused() { # METHOD CALL-TEXT WHY-START
  local out
  out=$(post "$1")
  [ "$out" = 1 ] || fail "rogue.$1 answered '$out', not 1 (EPERM)"
  grep -qE "^[0-9]+ plughost: $2 called in package 'rogue' 1\.0\.0 $build_re, instance 'rogue', in rogue\.$1; refused \(EPERM\): $3" "$tmp/run.log" ||
    fail "rogue.$1: no report '$2': $(cat "$tmp/run.log")"
  grep -qE "$2 called in package 'rogue' 1\.0\.0 $build_re, instance 'rogue', in rogue\.$1; refused" "$tmp/data/crashes.log" ||
    fail "rogue.$1: not journaled: $(cat "$tmp/data/crashes.log" 2>&1)"
  curl -sf -m 5 -o /dev/null "$url/_/health" || fail "the host does not answer after rogue.$1"
}
signal_why="a package must not stop, end or reload the host with a signal"
expect_refused killself "kill\(getpid\(\), SIGTERM\)" "$signal_why"
expect_refused raiseint "raise\(SIGINT\)" "$signal_why"
expect_refused threadkill "pthread_kill\(thread, SIGKILL\)" "$signal_why"
expect_refused syskill "syscall\(SYS_kill, getpid\(\), SIGTERM\)" "$signal_why"
expect_refused exitgroup "syscall\(SYS_exit_group\)" "a package must return PH_FAIL or report an error with ph_error, never exit the process"
expect_refused execself "execl\(\)" "a package must not replace the host process"
expect_refused onexit "on_exit\(\)" "it would run when the host exits, after the build was unloaded"
expect_refused quickexit "at_quick_exit\(\)" "glibc keeps quick_exit handlers after the build is unloaded"
[ "$(post atexit_ok)" = 0 ] || fail "atexit() was refused"
# 5. pthread_exit() in a method: 500 naming it, more times than the instance has slots
for i in $(seq 1 20); do
  out=$(curl -s -m 60 -o "$tmp/te.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{}' "$url/rogue/actors/rogue/threadexit")
  [ "$out" = 500 ] || fail "threadexit call $i answered $out: $(cat "$tmp/te.out")"
done
grep -qF "package 'rogue' build " "$tmp/te.out" && grep -qF ": rogue.rogue.threadexit called pthread_exit(); the call was ended (a method must return; pthread_exit() is for threads the package started)" "$tmp/te.out" ||
  fail "threadexit answer: $(cat "$tmp/te.out")"
grep -qE "pthread_exit\(\) called in package 'rogue' 1\.0\.0 $build_re, instance 'rogue', in rogue\.threadexit; refused \(EPERM\): a method must return" "$tmp/run.log" ||
  fail "threadexit not reported: $(cat "$tmp/run.log")"
[ "$(post ownthread)" = 7 ] || fail "pthread_exit() in the package's own thread was not allowed"
[ "$(post build)" = 1 ] || fail "the instance does not serve after the refusals"
# the build is unloaded at a reload: its atexit() handler runs then, while it is mapped
pkg rogue -DBUILD=2
out=$(ph reload --url "$url" rogue 2>&1) || fail "reload: $out"
[ "$(post build)" = 2 ] || fail "build 2 does not serve"
[ -f "$tmp/mark.atexit" ] || fail "the atexit() handler did not run when the build was unloaded"
[ -f "$tmp/mark.on_exit" ] && fail "the refused on_exit() handler ran"
kill -TERM "$pid"
ended_within 60
[ "$rc" = 0 ] || fail "shutdown ended with $rc: $(tail -5 "$tmp/run.log")"
grep -q "stopped cleanly" "$tmp/run.log" || fail "no clean stop"
if grep -E "SIGSEGV|Sanitizer|runtime error" "$tmp/run.log" >/dev/null; then
  fail "the host reported: $(grep -m1 -E 'SIGSEGV|Sanitizer|runtime error' "$tmp/run.log")"
fi
echo "  refusals reported and journaled; pthread_exit() in a method answered 500 twenty times"
rm -rf "$tmp/pk" "$tmp/data" "$tmp"/mark.*

# ---- 2. a thread started by a constructor keeps its build mapped across reloads ----
pkg rogue -DCTOR_THREAD -DBUILD=1
config 10
start_host -c "$tmp/host.ini"
wait_ready "$url"
old=$(curl -s "$url/_/packages" | python3 -c 'import json,sys
print(next(i.get("build","") for i in json.load(sys.stdin)["instances"] if i["instance"] == "rogue"))')
pkg rogue -DCTOR_THREAD -DBUILD=2
out=$(ph reload --url "$url" rogue 2>&1)
grep -qF "reloaded, but code of package 'rogue' still runs after stop()" <<<"$out" || fail "reload answer: $out"
grep -qF "package 'rogue' build $old: 1 thread started by the package is still running after stop(); its code stays mapped" <<<"$out" ||
  fail "the reload does not name the constructor's thread: $out"
pkg rogue -DCTOR_THREAD -DBUILD=3
ph reload --url "$url" rogue >/dev/null 2>&1 || true
[ "$(post build)" = 3 ] || fail "build 3 does not serve: $(tail -3 "$tmp/run.log")"
kill -TERM "$pid"
ended_within 60
if grep -E "SIGSEGV|Sanitizer|runtime error" "$tmp/run.log" >/dev/null; then
  fail "the host reported: $(grep -m1 -E 'SIGSEGV|Sanitizer|runtime error' "$tmp/run.log")"
fi
echo "  constructor threads counted: reloads kept the builds mapped"
rm -rf "$tmp/pk" "$tmp/data"

# ---- 1. a constructor that hangs only in the host's dlopen ----
pkg good
pkg hang -DCTOR_HANG
config 2
start_host -c "$tmp/host.ini"
ended_within 120
[ "$rc" = 75 ] || fail "a hung constructor ended the host with $rc, not 75: $(cat "$tmp/run.log")"
hang_re="hang in package 'hang' 1\.0\.0 $build_re, its ELF constructor did not return within 2 s while loading \(dlopen\); the build is quarantined \(the next start does not load it\)"
grep -qE "^[0-9]+ plughost: $hang_re; a thread stuck in the dynamic loader holds its lock, so the host cannot recover and exits with status 75" "$tmp/run.log" ||
  fail "no report of the hang: $(cat "$tmp/run.log")"
grep -qE "$hang_re" "$tmp/data/crashes.log" || fail "the hang is not journaled: $(cat "$tmp/data/crashes.log" 2>&1)"
rm -f "$tmp"/mark.*
# the next start refuses that build, saying why, and serves the rest
config 2
start_host -c "$tmp/host.ini"
wait_ready "$url"
[ "$("$PH_BIN" call --url "$url" good.rogue.build)" = 1 ] || fail "the other package does not serve"
out=$("$PH_BIN" status --url "$url" 2>&1)
grep -qE "package 'hang': quarantined: build [0-9a-f]{16} hung the host: its ELF constructor did not return while loading \(see .*crashes\.log\); it is not loaded again" <<<"$out" ||
  fail "status does not say why hang is refused: $out"
[ -f "$tmp/mark.hang" ] && fail "the quarantined constructor ran again"
stop_host
# a SIGTERM during a hang waits for it; a second one ends the host at once
two_sigterms() { # MARK FIRST-LINE (grep) AGAIN-LINE (grep -E): a host hanging once MARK exists
  config 120
  start_host -c "$tmp/host.ini"
  for _ in $(seq 1 600); do [ -f "$tmp/mark.$1" ] && break; sleep 0.1; done
  [ -f "$tmp/mark.$1" ] || fail "the host did not reach the $1 hang"
  sleep 0.2 # the start-up's own watch leaves the signals to a load's
  kill -TERM "$pid"
  wait_for "$tmp/run.log" "$2" 30
  sleep 0.3 # a repeat within 200 ms is the same request arriving twice
  kill -TERM "$pid"
  ended_within 30
  [ "$rc" = 1 ] || fail "the second SIGTERM during the $1 hang ended the host with $rc, not 1"
  grep -qE "$3" "$tmp/run.log" || fail "no line for the second SIGTERM: $(cat "$tmp/run.log")"
  rm -rf "$tmp/data" "$tmp"/mark.*
}
rm -rf "$tmp/data" "$tmp"/mark.*
two_sigterms hang "SIGTERM received while package 'hang' build [0-9a-f]* is loading: stopping once its constructor returns (within \[limits\] load_timeout, 120 s); a second SIGTERM exits at once" \
  "SIGTERM received again while package 'hang' build [0-9a-f]{16} is loading \(for [0-9.]+ s\): exiting now, exit status 1"
# a start() that never returns at start-up: the same
rm -rf "$tmp/pk/hang"
pkg starthang -DSTART_HANG
two_sigterms start "SIGTERM received while the instances are starting: stopping once the one starting now has started; a second SIGTERM exits at once" \
  "SIGTERM received again while the instances are starting \(for [0-9.]+ s\): exiting now, exit status 1"
rm -rf "$tmp/pk/starthang" "$tmp/data" "$tmp"/mark.*

# during a reload: the same limit and report, naming the new build
config 2
start_host -c "$tmp/host.ini"
wait_ready "$url"
pkg good -DCTOR_HANG
"$PH_BIN" -c "$tmp/host.ini" reload --url "$url" good >"$tmp/reload.out" 2>&1 &
reloader=$!
ended_within 120
wait "$reloader" || true
[ "$rc" = 75 ] || fail "a constructor hung in a reload ended the host with $rc, not 75"
grep -qE "^[0-9]+ plughost: hang in package 'good' 1\.0\.0 $build_re, its ELF constructor did not return within 2 s while loading \(dlopen\)" "$tmp/run.log" ||
  fail "no report of the hang in the reload: $(cat "$tmp/run.log")"
echo "  a hung constructor: exit status 75, quarantined at the next start; second SIGTERM honoured"
echo "1 passed, 0 failed"
