#!/usr/bin/env bash
# The HTTP contract is what is served: every operation of the examples'
# /_/openapi.json is called (requests built from the document alone) and
# every response body is validated against the document with a JSON Schema
# 2020-12 validator (python3-jsonschema, the dialect of OpenAPI 3.1), the
# management operations included.
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
cp -r "$PH_EXAMPLES" "$tmp/pk" # `remove` deletes a package directory: never the build's
port=$(free_port)
u="http://127.0.0.1:$port"
start_host --packages "$tmp/pk" --data-dir "$tmp/data" --listen "127.0.0.1:$port"
wait_ready "$u"
out=$(python3 "$PH_SOURCE_DIR/tests/tools/openapi_responses.py" "$u" "$tmp/data/admin.token" --manage counter 2>&1) ||
  fail "$out"
echo "$out"
n=$(grep -o '^[0-9]* responses validated' <<<"$out" | cut -d' ' -f1)
[ "$n" -ge 50 ] || fail "only $n responses validated"
echo "1 passed, 0 failed"
