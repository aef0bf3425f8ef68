#!/usr/bin/env bash
# What a script relies on from the CLI: an option of another command is a
# usage error (exit 2, one line naming it); `status`, `list` and `check --json`
# validate against the schemas shipped in dist/schemas/ (python3-jsonschema);
# exit 3 when no host runs at the address.
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
cp -r "$PH_EXAMPLES" "$tmp/pk"
printf '[provides]\ngreeting-api = 1.2.0\n' >>"$tmp/pk/hello/package.ini" # "provides" in every document
has_provides() { # FILE: hello's entry carries what it provides
  python3 - "$1" <<'PY' || fail "no provides for hello in $(cat "$1")"
import json, sys
doc = json.load(open(sys.argv[1]))
rows = doc.get("packages") or doc["instances"]
hello = [r for r in rows if r.get("name", r.get("package")) == "hello"]
assert hello and all(r["provides"] == {"greeting-api": "1.2.0"} for r in hello), hello
PY
}
ph() { "$PH_BIN" --packages "$tmp/pk" --data-dir "$tmp/data" "$@"; }
set +e
out=$(ph list --purge 2>&1); rc=$?
set -e
[ $rc = 2 ] && [ "$out" = "plughost: --purge is not an option of 'list'; \`plughost list --help\` shows its usage" ] ||
  fail "list --purge: $rc $out"
set +e; out=$("$PH_BIN" new --json x 2>&1); rc=$?; set -e
[ $rc = 2 ] && grep -qF -- "--json is not an option of 'new'" <<<"$out" || fail "new --json: $rc $out"
echo "  an option of another command: exit 2, one line"

validate() { # SCHEMA FILE
  python3 - "$PH_SOURCE_DIR/dist/schemas/$1" "$2" <<'PY'
import json, sys
from jsonschema import Draft202012Validator
schema, doc = (json.load(open(p)) for p in sys.argv[1:3])
Draft202012Validator.check_schema(schema)
errors = list(Draft202012Validator(schema).iter_errors(doc))
for e in errors[:5]:
    print("/".join(map(str, e.path)) or "(document)", e.message)
sys.exit(1 if errors else 0)
PY
}
ph list --json >"$tmp/list.json" || fail "list --json"
out=$(validate list.schema.json "$tmp/list.json") || fail "list --json against list.schema.json: $out"
has_provides "$tmp/list.json"
[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["packages"]))' "$tmp/list.json")" -ge 5 ] ||
  fail "list --json lists too few packages: $(cat "$tmp/list.json")"

ph check --json >"$tmp/check.json" || fail "check --json: $(cat "$tmp/check.json")"
out=$(validate check.schema.json "$tmp/check.json") || fail "check --json against check.schema.json: $out"
grep -q '"ok":true' "$tmp/check.json" || fail "check --json of the examples: $(cat "$tmp/check.json")"
has_provides "$tmp/check.json"
mkdir -p "$tmp/broken/app"
printf '[package]\nname = app\nversion = 1.0.0\n[requires]\nmissing = ^1\n' >"$tmp/broken/app/package.ini"
set +e; "$PH_BIN" --packages "$tmp/broken" --data-dir "$tmp/bdata" check --json >"$tmp/check2.json"; rc=$?; set -e
[ $rc = 1 ] || fail "check --json with a problem exited $rc"
out=$(validate check.schema.json "$tmp/check2.json") || fail "check --json (problems) against the schema: $out"
grep -q '"ok":false' "$tmp/check2.json" && grep -q "requires package 'missing'" "$tmp/check2.json" ||
  fail "check --json with a problem: $(cat "$tmp/check2.json")"

port=$(free_port)
set +e; "$PH_BIN" --data-dir "$tmp/data" status --url "http://127.0.0.1:$port" >/dev/null 2>&1; rc=$?; set -e
[ $rc = 3 ] || fail "status with no host running exited $rc, not 3"
start_host --packages "$tmp/pk" --data-dir "$tmp/data" --listen "127.0.0.1:$port"
wait_ready "http://127.0.0.1:$port"
"$PH_BIN" --data-dir "$tmp/data" status --url "http://127.0.0.1:$port" --json >"$tmp/status.json" ||
  fail "status --json"
out=$(validate status.schema.json "$tmp/status.json") || fail "status --json against status.schema.json: $out"
grep -q '"state":"running"' "$tmp/status.json" || fail "status --json: $(cat "$tmp/status.json")"
has_provides "$tmp/status.json"
echo "  list, status and check --json validate against dist/schemas/; exit 3 without a host"
echo "1 passed, 0 failed"
