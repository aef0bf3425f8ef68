#!/usr/bin/env bash
# A log pipe whose reader goes away (`plughost run | head -1`) does not end the
# host: it keeps serving, and SIGTERM still stops every instance and removes the
# local socket (it used to die of SIGPIPE, exit 141, socket left behind).
# One stop request delivered twice at once (timeout(1) signals the process and
# its group) is one request: a clean stop, not "received again: exit now".
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
port=$(free_port)
u="http://127.0.0.1:$port"
mkfifo "$tmp/log"
"$PH_BIN" --packages "$PH_EXAMPLES/calc" --data-dir "$tmp/data" --listen "127.0.0.1:$port" \
  --log-level info run >"$tmp/log" 2>&1 &
pid=$!
head -1 "$tmp/log" >/dev/null # the reader takes one line and goes away
wait_ready "$u"
for _ in 1 2 3; do # every request logs nothing at info, so make the host write: a reload logs
  curl -s -o /dev/null -X POST -H "Authorization: Bearer $(cat "$tmp/data/admin.token")" \
    "$u/_/reload/calc" || true
done
sleep 0.3
kill -0 "$pid" 2>/dev/null || { wait "$pid" || rc=$?; pid=; fail "the host died when its log pipe closed (exit ${rc:-0})"; }
got=$(curl -s -X POST -H 'Content-Type: application/json' -d '{"a":2,"b":40}' "$u/calc/actors/math/add")
[ "$got" = 42 ] || fail "calc.math.add after the log pipe closed: $got"
kill "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || fail "SIGTERM after the log pipe closed: exit $rc"
[ ! -e "$tmp/data/plughost.sock" ] || fail "the local socket was left behind"

start_host --packages "$PH_EXAMPLES/calc" --data-dir "$tmp/data2" --listen "127.0.0.1:$port"
wait_ready "$u"
kill -TERM "$pid"
for _ in $(seq 1 400); do grep -q "SIGTERM received: stopping" "$tmp/run.log" && break; sleep 0.005; done
kill -TERM "$pid" # within the 200 ms in which a repeat is the same request
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] && grep -q "stopped cleanly" "$tmp/run.log" ||
  fail "a SIGTERM repeated at once ended the host unclean (exit $rc): $(tail -3 "$tmp/run.log")"
echo "1 passed, 0 failed"
