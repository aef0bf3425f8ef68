#!/usr/bin/env bash
# `plughost call` and the admin token (issue 9, failure 5): the token goes
# only to requests the host refuses without it (401) and only to the host it
# belongs to (the configured listen address), and never after a redirect;
# the path of --url is used as a prefix, a query in it is refused; the proxy
# of the environment is used, except for loopback. A small fake host
# (python3, two ports) records what each request carried.
set -euo pipefail
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
cat >"$tmp/fake.py" <<'PY'
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
TOKEN, LOG = sys.argv[1], sys.argv[2]
ACTORS = {"instance": "calc", "actors": {"math": {
    "add": {"args": [{"name": "a", "type": "int64"}, {"name": "b", "type": "int64"}],
            "returns": "int64", "admin": False},
    "secret": {"args": [], "returns": "string", "admin": True}}}}
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n: self.rfile.read(n)
        auth = self.headers.get("Authorization")
        with open(LOG, "a") as f:
            f.write("%d %s %s %s\n" % (self.server.server_port, self.command, self.path, auth or "-"))
        path = self.path
        if path.startswith("http://"): path = "/" + path.split("/", 3)[3]  # as a proxy
        if path.startswith("/proxy/"): path = path[6:]
        if path.startswith("/redir/"):
            path = path[6:]
            if path == "/calc/actors/math/secret" and auth:
                self.send_response(307)
                self.send_header("Location", "http://127.0.0.1:%d/calc/actors/math/secret" % OTHER[0])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        if path == "/_/packages": return self.answer(200, {"instances": [{"instance": "calc", "mount": "/calc"}]})
        if path == "/calc/actors": return self.answer(200, ACTORS)
        if path == "/calc/actors/math/add": return self.answer(200, 42)
        if path == "/calc/actors/math/secret":
            if auth == "Bearer " + TOKEN: return self.answer(200, "s3cret")
            return self.answer(401, {"error": {"code": "unauthorized", "message": "calc.math.secret is an admin method; pass the admin token"}})
        self.answer(404, {"error": {"code": "not_found", "message": path}})
    do_GET = do_POST = handle_any
servers = [ThreadingHTTPServer(("127.0.0.1", 0), H) for _ in range(2)]
OTHER = [servers[1].server_port]
for s in servers: threading.Thread(target=s.serve_forever, daemon=True).start()
print(" ".join(str(s.server_port) for s in servers), flush=True)
threading.Event().wait(120)
PY
tok=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
mkfifo "$tmp/ports"
python3 "$tmp/fake.py" "$tok" "$tmp/log" >"$tmp/ports" &
pid=$!
read -r home other <"$tmp/ports"
mkdir -p "$tmp/data"
printf '%s\n' "$tok" >"$tmp/data/admin.token"
chmod 600 "$tmp/data/admin.token"
printf '[host]\ndata_dir = data\n[http]\nlisten = 127.0.0.1:%s\n' "$home" >"$tmp/host.ini"
ph() { "$PH_BIN" -c "$tmp/host.ini" "$@"; }

# a public method: no request carries the token
: >"$tmp/log"
[ "$(ph call calc.math.add a=2 b=40)" = 42 ] || fail "call add"
grep -q "Bearer" "$tmp/log" && fail "the token went with a public call: $(cat "$tmp/log")"
grep -q "POST /calc/actors/math/add -" "$tmp/log" || fail "no call seen: $(cat "$tmp/log")"
# an admin method: asked without, then once with the token, to its own host
: >"$tmp/log"
[ "$(ph call calc.math.secret)" = '"s3cret"' ] || fail "call secret"
[ "$(grep -c "Bearer $tok" "$tmp/log")" = 1 ] || fail "token sent other than once: $(cat "$tmp/log")"
grep -q "^$home POST /calc/actors/math/secret Bearer $tok" "$tmp/log" || fail "token not on the admin call"
grep -q "GET .*Bearer" "$tmp/log" && fail "the token went with a read: $(cat "$tmp/log")"
# the same host by name
: >"$tmp/log"
[ "$(ph call --url "http://localhost:$home" calc.math.secret)" = '"s3cret"' ] || fail "localhost"
# another host: never the token, and the refusal says why
: >"$tmp/log"
set +e; out=$(ph call --url "http://127.0.0.1:$other" calc.math.secret 2>&1); rc=$?; set -e
[ $rc -ne 0 ] || fail "another host got the admin call through"
grep -q "Bearer" "$tmp/log" && fail "the token went to another host: $(cat "$tmp/log")"
grep -qF "the admin token was not sent to http://127.0.0.1:$other: it belongs to the host at http://127.0.0.1:$home; to use it, name that host with -c host.ini or --listen ADDR:PORT" <<<"$out" \
  || fail "no reason given: $out"
[ "$(ph call --url "http://127.0.0.1:$other" calc.math.add a=1 b=1)" = 42 ] || fail "public call elsewhere"
# the path of --url is a prefix; a query is refused
: >"$tmp/log"
[ "$(ph call --url "http://127.0.0.1:$home/proxy/" calc.math.add a=1 b=2)" = 42 ] || fail "prefix"
grep -q "POST /proxy/calc/actors/math/add" "$tmp/log" || fail "prefix dropped: $(cat "$tmp/log")"
set +e; out=$(ph call --url "http://127.0.0.1:$home/?x=1" calc.math.add a=1 b=2 2>&1); set -e
grep -qF "URL 'http://127.0.0.1:$home/?x=1' has a query or fragment, which plughost cannot use" <<<"$out" \
  || fail "query in --url: $out"
# a redirect answered to a request carrying the token is not followed
: >"$tmp/log"
set +e; out=$(ph call --url "http://127.0.0.1:$home/redir/" calc.math.secret 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "a redirect with the token: exit $rc: $out"
grep -qF "answered with a redirect (HTTP 307) to http://127.0.0.1:$other/calc/actors/math/secret, which is not followed with the admin token" <<<"$out" ||
  fail "a redirect with the token: $out"
grep -q "^$home POST /redir/calc/actors/math/secret Bearer $tok" "$tmp/log" || fail "no call with the token: $(cat "$tmp/log")"
grep -q "^$other " "$tmp/log" && fail "the redirect was followed: $(cat "$tmp/log")"
# the proxy of the environment carries calls to other hosts, never to loopback
: >"$tmp/log"
[ "$(http_proxy="http://127.0.0.1:$other" ph call --url "http://plughost.invalid:$home" calc.math.add a=1 b=2)" = 42 ] ||
  fail "a call through the proxy"
grep -q "^$other POST http://plughost.invalid:$home/calc/actors/math/add -" "$tmp/log" ||
  fail "the proxy was not used: $(cat "$tmp/log")"
: >"$tmp/log"
[ "$(http_proxy="http://127.0.0.1:$other" ph call calc.math.add a=1 b=2)" = 42 ] || fail "a loopback call with a proxy set"
grep -q "^$other " "$tmp/log" && fail "a loopback call went through the proxy: $(cat "$tmp/log")"
echo "1 passed, 0 failed"
