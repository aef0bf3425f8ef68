#!/usr/bin/env bash
# What a script relies on from the CLI: an option of another command is a
# usage error (exit 2, one line naming it); `status`, `list` and `check --json`
# validate against the schemas shipped in dist/schemas/ (python3-jsonschema);
# exit 3 when no host runs at the address, 75 when it asks to retry; every
# command's usage errors; plughost(1) renders without a warning.
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
[ $rc = 2 ] && [ "$out" = "plughost list: --purge is not an option of 'list'; see plughost list --help" ] ||
  fail "list --purge: $rc $out"
set +e; out=$("$PH_BIN" new --json x 2>&1); rc=$?; set -e
[ $rc = 2 ] && grep -qF -- "--json is not an option of 'new'" <<<"$out" || fail "new --json: $rc $out"
echo "  an option of another command: exit 2, one line"

# Every command, from the one table (host/main.c): an extra argument, an unknown option and a
# bad value are usage errors: exit 2 and one line "plughost CMD: ...; see plughost CMD --help".
usage_err() { # WHAT CMD ARGS... : exit 2, one line of that form
  local what=$1 cmd=$2 out rc; shift 2
  set +e; out=$(cd "$tmp" && "$PH_BIN" "$cmd" "$@" 2>&1 >/dev/null); rc=$?; set -e
  [ $rc = 2 ] && [ "$(wc -l <<<"$out")" = 1 ] && [[ "$out" == "plughost $cmd: "*"; see plughost $cmd --help" ]] ||
    fail "$what: plughost $cmd $*: exit $rc: $out"
  printf '%s\n' "$out"
}
n=0
while read -r cmd args bad; do
  [ "$args" = - ] && args=
  # shellcheck disable=SC2086
  [ "$cmd" = call ] || [ "$cmd" = install ] || usage_err "an extra argument" "$cmd" $args extra | grep -qF "unexpected argument 'extra'" ||
    fail "$cmd: the extra argument is not named"
  # shellcheck disable=SC2086
  usage_err "an unknown option" "$cmd" $args --frobnicate | grep -qF "unknown option '--frobnicate'" ||
    fail "$cmd: the unknown option is not named"
  # shellcheck disable=SC2086
  usage_err "a bad value" "$cmd" $args $bad | grep -qF -- "${bad%%[ =]*}" || fail "$cmd: the bad value's option is not named"
  n=$((n + 1))
done <<'TABLE'
run - --log-level loud
check - --log-format fancy
call calc.math.add --url ftp://example.org
list - --log-level loud
status - --url http://user:secret@127.0.0.1:1
reload calc --log-format fancy
backup calc --log-level loud
enable calc --url nohost
disable calc --log-level loud
install ./nothing --log-level loud
pack ./nothing --output
keygen k --output
remove calc --log-level loud
new x --output
help list --man=yes
TABLE
[ $n = 15 ] || fail "walked $n commands"
set +e; out=$("$PH_BIN" new x --log-level info 2>&1); rc=$?; set -e
[ $rc = 2 ] && [ "$out" = "plughost new: --log-level is not an option of 'new'; see plughost new --help" ] ||
  fail "new --log-level: $rc $out"
set +e; out=$(ph status --url http://user:secret@127.0.0.1:1 2>&1); rc=$?; set -e
[ $rc = 2 ] && grep -qF -- "--token TOKEN or PLUGHOST_TOKEN" <<<"$out" || fail "credentials: $rc $out"
! grep -qF secret <<<"$out" || fail "the password is echoed: $out"
echo "  every command: an extra argument, an unknown option, a bad value: exit 2, one line"

# plughost(1) from the same table: its sections, and man renders it without a warning
"$PH_BIN" help --man >"$tmp/plughost.1"
for sec in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS "EXIT STATUS" FILES ENVIRONMENT "SEE ALSO"; do
  grep -qx "\.SH $sec" "$tmp/plughost.1" || fail "plughost(1) has no $sec section"
done
if command -v man >/dev/null; then
  warn=$(MANWIDTH=80 man --warnings -l "$tmp/plughost.1" 2>&1 >/dev/null)
  [ -z "$warn" ] || fail "man --warnings: $warn"
  MANWIDTH=80 man -l "$tmp/plughost.1" 2>/dev/null | grep -q "EXIT STATUS" || fail "man -l: no EXIT STATUS"
fi
echo "  plughost help --man: every section, no warning from man --warnings"

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
set +e; out=$("$PH_BIN" --data-dir "$tmp/data" status --url "https://127.0.0.1:$port" 2>&1); rc=$?; set -e
[ $rc = 1 ] && grep -qF "the host itself speaks plain HTTP; use http:// for it" <<<"$out" ||
  fail "https:// to the plain-HTTP host: exit $rc: $out"
echo "  list, status and check --json validate against dist/schemas/; exit 3 without a host"

# list and list --json agree: a manifest that cannot be read is exit 1 in both
set +e
mkdir -p "$tmp/broken2/bad" && printf '[package]\nname = \n' >"$tmp/broken2/bad/package.ini"
"$PH_BIN" --packages "$tmp/broken2" --data-dir "$tmp/bdata" list >/dev/null 2>&1; rc1=$?
"$PH_BIN" --packages "$tmp/broken2" --data-dir "$tmp/bdata" list --json >"$tmp/list2.json" 2>/dev/null; rc2=$?
set -e
[ $rc1 = 1 ] && [ $rc2 = 1 ] || fail "list exits $rc1, list --json $rc2 with an unreadable manifest"
out=$(validate list.schema.json "$tmp/list2.json") || fail "list --json (problems) against the schema: $out"

# A host that asks to retry (starting, reloading: 503) is exit 75 for every command that talks to
# one; a redirect is said, with where it points (a stand-in server on 127.0.0.1).
fport=$(free_port)
python3 - "$fport" >"$tmp/fake.log" 2>&1 <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        if self.path.startswith("/moved"):
            self.send_response(307)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere" + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b'{"error":{"code":"starting","message":"the host is starting; retry"}}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = answer
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
fake=$!
trap 'kill "$fake" 2>/dev/null || true; e2e_cleanup' EXIT
for _ in $(seq 100); do curl -s "http://127.0.0.1:$fport/" >/dev/null 2>&1 && break; sleep 0.1; done
for args in "status" "call calc.math.add a=1" "reload calc" "enable calc" "disable calc" "remove --purge calc"; do
  # shellcheck disable=SC2086
  set +e; out=$(ph $args --url "http://127.0.0.1:$fport/busy" --token t 2>&1); rc=$?; set -e
  [ $rc = 75 ] || fail "plughost $args with the host starting: exit $rc, not 75: $out"
  grep -qF "the host is starting; retry" <<<"$out" || fail "plughost $args: $out"
done
for op in reload enable; do
  set +e; out=$(ph $op calc --url "http://127.0.0.1:$fport/moved" --token t 2>&1); rc=$?; set -e
  [ $rc = 1 ] && grep -qF "plughost: redirect: the host answered HTTP 307 to http://127.0.0.1:1/elsewhere/moved/_/$op/calc, which is not followed" <<<"$out" ||
    fail "$op answered by a redirect: exit $rc: $out"
done
kill "$fake"; wait "$fake" 2>/dev/null || true

# a TLS proxy with a private CA: refused until --cacert or PLUGHOST_CACERT names the CA
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -days 2 -keyout "$tmp/ca.key" -out "$tmp/ca.pem" >/dev/null 2>&1 || fail "openssl req"
tport=$(free_port)
python3 - "$tport" "$tmp/ca.pem" "$tmp/ca.key" >"$tmp/tls.log" 2>&1 <<'PY' &
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (b'{"instances":[{"instance":"calc","package":"calc","version":"1.0.0","state":"running"},'
                b'{"instance":"a_much_longer_instance_name_than_16","package":"calc","version":"1.0.0",'
                b'"state":"failed","reason":"why"}]}')
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
fake=$!
for _ in $(seq 100); do curl -sk "https://127.0.0.1:$tport/" >/dev/null 2>&1 && break; sleep 0.1; done
set +e; out=$(ph status --url "https://127.0.0.1:$tport" 2>&1); rc=$?; set -e
[ $rc = 1 ] && grep -qF "is not trusted" <<<"$out" && grep -qF -- "--cacert FILE or set PLUGHOST_CACERT" <<<"$out" ||
  fail "a private CA without --cacert: exit $rc: $out"
out=$(ph status --url "https://127.0.0.1:$tport" --cacert "$tmp/ca.pem" 2>&1) || fail "status --cacert: $out"
grep -q "^calc .*running" <<<"$out" || fail "status --cacert: $out"
# the status table's columns fit the longest entry: every PACKAGE column starts at one offset
awk 'NR == 1 { col = index($0, "PACKAGE") } NR > 1 { if (substr($0, col, 5) != "calc ") bad = 1 }
     END { exit bad || !col }' <<<"$out" || fail "status columns misaligned:
$out"
out=$(PLUGHOST_CACERT="$tmp/ca.pem" ph status --url "https://127.0.0.1:$tport" 2>&1) || fail "PLUGHOST_CACERT: $out"
kill "$fake"; wait "$fake" 2>/dev/null || true
echo "  https:// to the plain host is said; a private CA is trusted with --cacert or PLUGHOST_CACERT"
echo "  exit 75 from every command when the host asks to retry; a redirect says where it points"
echo "1 passed, 0 failed"
