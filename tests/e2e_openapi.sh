#!/usr/bin/env bash
# The HTTP contract is what is served: every operation of the examples'
# /_/openapi.json is called (requests built from the document alone) and
# every response body is validated against the document with a JSON Schema
# 2020-12 validator (python3-jsonschema, the dialect of OpenAPI 3.1), the
# management operations included.
set -euo pipefail
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/run.log" ] && tail -5 "$tmp/run.log"; exit 1; }
cp -r "$PH_EXAMPLES" "$tmp/pk" # `remove` deletes a package directory: never the build's
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
u="http://127.0.0.1:$port"
"$PH_BIN" --packages "$tmp/pk" --data-dir "$tmp/data" run --listen "127.0.0.1:$port" >"$tmp/run.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -sf -o /dev/null "$u/_/health?ready" && break; sleep 0.1; done
out=$(python3 "$PH_SOURCE_DIR/tests/tools/openapi_responses.py" "$u" "$tmp/data/admin.token" --manage counter 2>&1) ||
  fail "$out"
echo "$out"
n=$(grep -o '^[0-9]* responses validated' <<<"$out" | cut -d' ' -f1)
[ "$n" -ge 50 ] || fail "only $n responses validated"
echo "1 passed, 0 failed"
