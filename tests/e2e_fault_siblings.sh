#!/usr/bin/env bash
# Siblings of the package faults a fresh attacker found (issue "Package
# faults in process"): a package's forked child ending with exit(0) is not
# the host stopping (no report, no quarantine); a stack overflow in a thread
# the package started is reported and journaled, not a bare "Segmentation
# fault"; a package that resets SIGSEGV during a call gets the host's
# handler put back (within a second), so the next crash is still reported.
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
post() { curl -s -X POST -H 'Content-Type: application/json' -d '{}' "$@"; }
if [ "${PH_SANITIZE:-0}" = 1 ]; then
  # the sanitizers report crashes themselves, and LeakSanitizer ends a forked child non-zero
  echo "sanitizer build: skipped"
  exit 77 # reported as skipped
fi

# --- a forked child's exit(0) ---
build_pkg "$tmp/pk" forker containment/forker.c
port=$(free_port)
u="http://127.0.0.1:$port"
start_host --packages "$tmp/pk" --data-dir "$tmp/data" --listen "127.0.0.1:$port"
wait_ready "$u"
for _ in 1 2 3; do [ "$(post "$u/forker/actors/x/spawn")" = 0 ] || fail "spawn"; done
! grep -q "exit(0) called" "$tmp/run.log" || fail "a child's exit(0) was reported: $(grep exit "$tmp/run.log")"
[ ! -s "$tmp/data/crashes.log" ] || fail "journaled: $(cat "$tmp/data/crashes.log")"
stop_host
start_host --packages "$tmp/pk" --data-dir "$tmp/data" --listen "127.0.0.1:$port"
wait_ready "$u"
[ "$(post "$u/forker/actors/x/spawn")" = 0 ] || fail "forker quarantined after its children exited: $(tail -3 "$tmp/run.log")"
stop_host
echo "  a package's forked child ending with exit(0): no report, no journal line, no quarantine"

# --- a stack overflow in the package's own thread ---
rm -rf "$tmp/pk" "$tmp/data"
build_pkg "$tmp/pk" thrdeep containment/thrdeep.c
set +e
"$PH_BIN" --packages "$tmp/pk" --data-dir "$tmp/data" run --listen "127.0.0.1:$port" >"$tmp/run.log" 2>&1
rc=$?
set -e
[ $rc = 139 ] || fail "the overflow should end the host by SIGSEGV, got $rc"
grep -q "SIGSEGV (invalid memory access) in package 'thrdeep' 1.0.0 (build [0-9a-f]\{16\})" "$tmp/run.log" ||
  fail "no report for a stack overflow in a package thread: $(tail -3 "$tmp/run.log")"
grep -q "thrdeep" "$tmp/data/crashes.log" || fail "not journaled"
echo "  a stack overflow in a thread the package started: reported and journaled"

# --- a package resetting SIGSEGV during a call ---
rm -rf "$tmp/pk" "$tmp/data"
build_pkg "$tmp/pk" segvsteal containment/segvsteal.c
start_host --packages "$tmp/pk" --data-dir "$tmp/data" --listen "127.0.0.1:$port"
wait_ready "$u"
[ "$(post "$u/segvsteal/actors/x/take")" = 1 ] || fail "take"
for _ in $(seq 1 40); do grep -q "replaced the host's crash handler" "$tmp/run.log" && break; sleep 0.1; done
grep -q "package code replaced the host's crash handler (SIGSEGV, SIGABRT) during a call; put back" "$tmp/run.log" ||
  fail "the handler was not put back: $(tail -3 "$tmp/run.log")"
post "$u/segvsteal/actors/x/boom" >/dev/null || true
set +e; wait "$pid"; rc=$?; set -e; pid=
[ $rc = 139 ] || fail "the crash should end the host by SIGSEGV, got $rc"
grep -q "SIGSEGV (invalid memory access) in package 'segvsteal' 1.0.0 (build [0-9a-f]\{16\}), instance 'segvsteal', in x.boom" "$tmp/run.log" ||
  fail "the crash after the reset is not reported: $(tail -3 "$tmp/run.log")"
echo "  a package resetting SIGSEGV in a call: the handler is put back, the next crash reported"
echo "1 passed, 0 failed"
