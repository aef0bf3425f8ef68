#!/usr/bin/env bash
# Code that outlives stop() (issue "Package faults in process", item 1): a
# thread a package leaves running, a pthread key it never deletes, a signal
# handler it leaves in place, a crash handler it replaces, thread-local
# destructors that keep its mapping, a timer it never deletes, initial-exec
# TLS, and a crash in code left running after stop(). The host keeps such
# code mapped instead of crashing, says so in the answer, the log and
# `plughost status`, and blames the package for a crash in it.
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
src="$PH_SOURCE_DIR/tests/containment"
pkg() { # NAME SOURCE [cflags]: builds beside, then renames (a reload never sees half a file)
  local name=$1 c=$2
  shift 2
  mkdir -p "$tmp/pk/$name"
  printf '[package]\nname = %s\nversion = 1.0.0\n' "$name" >"$tmp/pk/$name/package.ini"
  cc -std=c11 -shared -fPIC -fvisibility=hidden -I"$PH_SOURCE_DIR/sdk/include" \
    -DPH_PACKAGE_NAME="\"$name\"" -DPH_PACKAGE_VERSION='"1.0.0"' "$@" \
    -o "$tmp/pk/$name/.$name.so" "$src/$c" || fail "cc $name"
  mv "$tmp/pk/$name/.$name.so" "$tmp/pk/$name/$name.so"
}
printf '[host]\nreload = false\n' >"$tmp/host.ini" # reloads happen when the test asks
ph() { "$PH_BIN" -c "$tmp/host.ini" --packages "$tmp/pk" --data-dir "$tmp/data" --log-level error "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
serve() { # starts the host on a free port: $port, $url, $pid
  port=$(free_port)
  url="http://127.0.0.1:$port"
  "$PH_BIN" -c "$tmp/host.ini" --packages "$tmp/pk" --data-dir "$tmp/data" --log-level info \
    run --listen "127.0.0.1:$port" >"$tmp/run.log" 2>&1 &
  pid=$!
  # serving: every instance started (the listener may answer before they are)
  for _ in $(seq 1 100); do grep -q " serving .* instance(s) on " "$tmp/run.log" && return 0; sleep 0.1; done
  fail "the host did not start: $(cat "$tmp/run.log")"
}
build_of() { # the build instance $1 serves, from /_/packages
  curl -s "$url/_/packages" | python3 -c 'import json,sys
for i in json.load(sys.stdin)["instances"]:
    if i["instance"] == sys.argv[1]: print(i.get("build", ""))' "$1"
}

# initial-exec TLS is refused at load, saying how to rebuild
pkg statictls statictls.c -ftls-model=initial-exec
set +e; out=$(ph call --local statictls.statictls.count 2>&1); rc=$?; set -e
[ $rc != 0 ] || fail "a package with static TLS must be refused: $out"
grep -qF "statictls.so uses static TLS (DF_STATIC_TLS: thread-local variables built with -ftls-model=initial-exec): glibc cannot give its space back, so reloading it would fail after a few builds; rebuild it with -fPIC and the default global-dynamic TLS model (drop -ftls-model=initial-exec and tls_model(\"initial-exec\"))" <<<"$out" \
  || fail "$out"
pkg statictls statictls.c
[ "$(ph call --local statictls.statictls.count)" = 1 ] || fail "the same package with default TLS should load"
rm -rf "$tmp/pk/statictls"

# a thread-local destructor keeps the build mapped after dlclose: said once, naming the cause
pkg tlsdtor tlsdtor.c
out=$("$PH_BIN" -c "$tmp/host.ini" --packages "$tmp/pk" --data-dir "$tmp/data" --log-level warn \
  call --local tlsdtor.tlsdtor.remember 2>&1) || fail "tlsdtor: $out"
grep -q "^1$" <<<"$out" || fail "tlsdtor.remember: $out"
grep -q "package 'tlsdtor' build [0-9a-f]\{16\}: still mapped after it was unloaded (1 copy): most likely thread-local destructors (C++ thread_local, __cxa_thread_atexit) registered on threads that still run; every reload keeps another copy; give thread-local objects no destructor" <<<"$out" \
  || fail "no word of the mapping kept by a thread-local destructor: $out"
[ "$(grep -c "still mapped after it was unloaded" <<<"$out")" = 1 ] || fail "said more than once: $out"
rm -rf "$tmp/pk/tlsdtor"

# a running host: a thread left after stop, a key never deleted, a SIGUSR1 handler left behind
pkg lingerer lingerer.c -DBUILD=1
pkg keyleaver keyleaver.c -DBUILD=1
pkg sigleaver sigleaver.c
# ThreadSanitizer cannot run SIGEV_THREAD timers at all: glibc starts their helper thread
# itself, unseen by the sanitizer, whose malloc then crashes in it (with or without the host)
timers=1
[ "${PH_TSAN:-0}" = 1 ] && timers=0
[ $timers = 1 ] && pkg timerleaver timerleaver.c -DBUILD=1
serve
old=$(build_of lingerer)
[ -n "$old" ] || fail "no build for lingerer in /_/packages"
pkg lingerer lingerer.c -DBUILD=2
out=$(ph reload --listen "127.0.0.1:$port" lingerer)
grep -qF "\"result\":\"reloaded, but code of package 'lingerer' still runs after stop()\"" <<<"$out" || fail "reload answer: $out"
thread_msg="package 'lingerer' build $old: 1 thread started by the package is still running after stop(); its code stays mapped; join your threads in stop()"
grep -qF "$thread_msg" <<<"$out" || fail "reload answer does not name the thread: $out"
[ "$(ph call --url "$url" lingerer.lingerer.build)" = 2 ] || fail "the new build does not serve"
out=$(ph status --url "$url")
grep -qF "code that outlived stop():" <<<"$out" && grep -qF "  $thread_msg" <<<"$out" || fail "status: $out"
grep -qF "$thread_msg" "$tmp/run.log" || fail "not logged: $(cat "$tmp/run.log")"
# each disable/enable leaves one more thread: the answers count them
new=$(build_of lingerer)
out=$(ph disable --listen "127.0.0.1:$port" lingerer)
grep -qF "disabled; data kept, but code of package 'lingerer' still runs after stop()" <<<"$out" || fail "disable: $out"
grep -qF "package 'lingerer' build $new: 1 thread started by the package is still running after stop()" <<<"$out" || fail "disable: $out"
out=$(ph enable --listen "127.0.0.1:$port" lingerer)
grep -qF "running, but code of package 'lingerer' still runs after stop()" <<<"$out" || fail "enable: $out"
grep -q "warn  package 'lingerer': 2 threads started by earlier builds still run; see plughost status" "$tmp/run.log" \
  || fail "enable did not count the threads left: $(cat "$tmp/run.log")"

# the key: worker threads hold values; the old build stays mapped for its destructor
kold=$(build_of keyleaver)
for _ in $(seq 1 8); do ph call --url "$url" keyleaver.keyleaver.touch >/dev/null; done
pkg keyleaver keyleaver.c -DBUILD=2
out=$(ph reload --listen "127.0.0.1:$port" keyleaver)
grep -qF "package 'keyleaver' build $kold: 1 pthread key with a destructor in the package was never deleted; its code stays mapped; call pthread_key_delete() in stop()" <<<"$out" \
  || fail "reload answer does not name the key: $out"
[ "$(ph call --url "$url" keyleaver.keyleaver.touch)" = 2 ] || fail "keyleaver build 2 does not serve"

# the SIGUSR1 handler left by the old build (the new one has none): reset at its stop, logged;
# the signal no longer reaches unmapped code
sold=$(build_of sigleaver)
pkg sigleaver sigleaver.c -DUSR1=0
ph reload --listen "127.0.0.1:$port" sigleaver >/dev/null
grep -qF "package 'sigleaver' build $sold left its handler for SIGUSR1 in place after stop(); SIGUSR1 is now ignored (its default would end the host); restore the previous handler in stop()" "$tmp/run.log" \
  || fail "no word of the SIGUSR1 handler: $(cat "$tmp/run.log")"
kill -USR1 "$pid"
sleep 0.2
ph status --url "$url" >/dev/null || fail "SIGUSR1 ended the host: $(tail -5 "$tmp/run.log")"

# a SIGEV_THREAD timer never deleted: its build stays mapped for the callback
if [ $timers = 1 ]; then
  told=$(build_of timerleaver)
  pkg timerleaver timerleaver.c -DBUILD=2
  out=$(ph reload --listen "127.0.0.1:$port" timerleaver)
  grep -qF "package 'timerleaver' build $told: 1 timer (timer_create, SIGEV_THREAD) calling into the package was never deleted; its code stays mapped; call timer_delete() in stop()" <<<"$out" \
    || fail "reload answer does not name the timer: $out"
  sleep 0.2 # the old build's timer fires a few times more
  [ "$(ph call --url "$url" timerleaver.timerleaver.build)" = 2 ] || fail "timerleaver build 2 does not serve"
else
  echo "ThreadSanitizer build: the SIGEV_THREAD timer part is skipped"
fi

# remove: the running host stops the package, and says its code still runs
out=$(ph remove --listen "127.0.0.1:$port" lingerer)
grep -qF "the running host at $url stopped lingerer, but its code still runs:" <<<"$out" || fail "remove: $out"
grep -qF "  $thread_msg" <<<"$out" || fail "remove does not list the threads: $out"

# shutdown: the workers' key destructors run in the kept build, no crash
kill "$pid"
set +e; wait "$pid"; rc=$?; set -e
pid=
[ $rc = 0 ] || fail "shutdown ended with $rc: $(tail -5 "$tmp/run.log")"
grep -q "stopped cleanly" "$tmp/run.log" || fail "no clean stop: $(tail -5 "$tmp/run.log")"
if grep -E "SIGSEGV|ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error" "$tmp/run.log" >/dev/null; then
  fail "the server reported: $(grep -m1 -E 'SIGSEGV|Sanitizer|runtime error' "$tmp/run.log")"
fi
rm -rf "$tmp/pk"/* "$tmp/data"

if [ "${PH_SANITIZE:-0}" = 1 ]; then
  echo "sanitizer build: ASan reports crashes and exits itself; the crash reports are skipped"
  echo "1 passed, 0 failed"
  exit 0
fi

# a package that replaces the host's SIGSEGV handler: warned, the host's put back, the crash reported
pkg sigleaver sigleaver.c -DGRAB=1
set +e; out=$(ph --log-level warn call --local sigleaver.sigleaver.crash 2>&1); rc=$?; set -e
grep -q "warn  package 'sigleaver' build [0-9a-f]\{16\} replaced the host's crash handler (SIGSEGV) in start(); the host put its own back, so that a crash is still reported and journaled; a package must not handle SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGABRT" <<<"$out" \
  || fail "no warning for a replaced crash handler: $out"
[ $rc = 139 ] || fail "expected death by SIGSEGV (139), got $rc: $out"
grep -q "plughost: SIGSEGV (invalid memory access) in package 'sigleaver' 1.0.0 (build [0-9a-f]\{16\}), instance 'sigleaver', in sigleaver.crash; the host stops" <<<"$out" \
  || fail "the crash went unreported: $out"
rm -rf "$tmp/pk/sigleaver"

# a thread left running after stop() crashes later: blamed on the package and build, journaled
pkg lingerer lingerer.c -DBUILD=1 -DCRASH=1
serve
old=$(build_of lingerer)
pkg lingerer lingerer.c -DBUILD=2
ph reload --listen "127.0.0.1:$port" lingerer >/dev/null
set +e; wait "$pid"; rc=$?; set -e
pid=
[ $rc = 139 ] || fail "expected death by SIGSEGV (139), got $rc: $(tail -5 "$tmp/run.log")"
msg="plughost: SIGSEGV (invalid memory access) in package 'lingerer' 1.0.0 (build $old), in a thread the package started, still running after stop(); the host stops: fix the package (run it under gdb or ASan), then start the host again"
grep -qF "$msg" "$tmp/run.log" || fail "the crash is not blamed on the package: $(tail -3 "$tmp/run.log")"
grep -qF "$msg" "$tmp/data/crashes.log" || fail "not journaled"
echo "1 passed, 0 failed"
