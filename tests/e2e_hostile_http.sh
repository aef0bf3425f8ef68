#!/usr/bin/env bash
# Hostile clients over real HTTP (issue 9, failures 3, 4, 7): cross-site
# writes (no JSON type, foreign Origin, DNS rebinding Host), CORS for
# [http] allowed_origins, an admin method relayed by a package for a caller
# without the token, and inputs that were answered wrongly (bad %-escapes,
# non-finite floats, 2000+ order terms, disagreeing Content-Length, oversize
# URL and headers, a newline written to the log).
set -euo pipefail
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/run.log" ] && tail -n 20 "$tmp/run.log"; exit 1; }
mkdir -p "$tmp/pk"
cp -r "$PH_EXAMPLES/pkgmgr" "$PH_EXAMPLES/notes" "$PH_FIXTURES/sec_fx" "$tmp/pk/"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
u="http://127.0.0.1:$port"
cat >"$tmp/host.ini" <<INI
[host]
package_dirs = pk
data_dir = data
[http]
listen = 127.0.0.1:$port
allowed_origins = https://app.example, http://127.0.0.1:3000
server_names = plughost.test
INI
"$PH_BIN" -c "$tmp/host.ini" run >"$tmp/run.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do curl -sf -o /dev/null "$u/_/health?ready" && break; sleep 0.1; done
tok=$(cat "$tmp/data/admin.token")
J='Content-Type: application/json'
# status and body of one request: "$code $body"
hit() { curl -s -o "$tmp/body" -D "$tmp/head" -w '%{http_code}' "$@"; }
body() { cat "$tmp/body"; }
expect() { # expect CODE TEXT -- curl args
  local want=$1 text=$2; shift 3
  local code; code=$(hit "$@")
  [ "$code" = "$want" ] || fail "$* -> $code (want $want): $(body)"
  [ -z "$text" ] || grep -qF -- "$text" "$tmp/body" || fail "$* -> body lacks '$text': $(body)"
}
count() { curl -s "$u/notes/actors/note/count" -X POST -H "$J" -d '{}'; }

# --- a NUL byte in a JSON body (jansson alone skips one after a number): refused, nothing written
before=$(count)
printf '{"title":"nul","pinned":1\000}' >"$tmp/nul.json"
expect 400 'the body is not valid JSON: a NUL byte (JSON text cannot hold one) at line 1 column 26' \
  -- -X POST "$u/notes/models/note" -H "$J" --data-binary "@$tmp/nul.json"
[ "$(count)" = "$before" ] || fail "a body with a NUL byte wrote a note"

# --- 3. cross-site writes ---------------------------------------------------
before=$(count)
expect 403 '"code":"origin_not_allowed"' -- -X POST "$u/notes/models/note" -H 'Origin: http://evil.example' \
  -H 'Content-Type:' --data-binary '{"title":"x"}'
expect 403 'add the origin to [http] allowed_origins' -- -X POST "$u/notes/models/note" \
  -H 'Origin: http://evil.example' -H "$J" --data-binary '{"title":"x"}'
expect 403 '"code":"origin_not_allowed"' -- -X DELETE "$u/notes/models/note/1" -H 'Origin: null' -H "$J"
expect 415 'POST requests must be sent with Content-Type: application/json (got none)' -- \
  -X POST "$u/notes/models/note" -H 'Content-Type:' --data-binary '{"title":"x"}'
expect 415 '(got text/plain)' -- -X POST "$u/notes/models/note" -H 'Content-Type: text/plain' -d '{"title":"x"}'
expect 415 '(got application/x-www-form-urlencoded)' -- -X POST "$u/notes/models/note" -d '{"title":"x"}'
expect 415 'PATCH requests' -- -X PATCH "$u/notes/models/note/1" -H 'Content-Type: multipart/form-data' -d '{}'
[ "$(count)" = "$before" ] || fail "a refused request created a record ($before -> $(count))"
# DNS rebinding: a name this host does not answer to
expect 421 "use its address (such as 127.0.0.1:$port)" -- "$u/notes/models/note" -H 'Host: rebind.evil.example'
expect 421 '"code":"misdirected_request"' -- "$u/notes/models/note" -H 'Host: rebind.evil.example'
expect 421 'add the name to [http] server_names' -- -X POST "$u/notes/models/note" \
  -H "Host: rebind.evil.example:$port" -H "$J" -d '{"title":"x"}'
expect 200 '"items"' -- "$u/notes/models/note" -H 'Host: plughost.test'
expect 200 '"items"' -- "$u/notes/models/note" -H "Host: localhost:$port"
# same origin (the package manager page) still writes
expect 201 '"title":"same-origin"' -- -X POST "$u/notes/models/note" -H "Origin: $u" -H "$J" \
  -d '{"title":"same-origin"}'
# CORS for an allowed origin: preflight, then the real request carries the headers
expect 204 '' -- -X OPTIONS "$u/notes/models/note" -H 'Origin: https://app.example' \
  -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: content-type'
grep -qi '^Access-Control-Allow-Origin: https://app.example' "$tmp/head" || fail "preflight: $(cat "$tmp/head")"
grep -qi '^Access-Control-Allow-Methods: .*POST' "$tmp/head" || fail "preflight methods: $(cat "$tmp/head")"
grep -qi '^Access-Control-Allow-Headers: Content-Type, Authorization' "$tmp/head" || fail "preflight headers"
expect 403 'add it to [http] allowed_origins' -- -X OPTIONS "$u/notes/models/note" \
  -H 'Origin: https://evil.example' -H 'Access-Control-Request-Method: POST'
grep -qi '^Access-Control-Allow-Origin' "$tmp/head" && fail "a refused preflight allowed the origin"
expect 201 '"title":"from-app"' -- -X POST "$u/notes/models/note" -H 'Origin: https://app.example' -H "$J" \
  -d '{"title":"from-app"}'
grep -qi '^Access-Control-Allow-Origin: https://app.example' "$tmp/head" || fail "no CORS header on POST"
grep -qi '^Access-Control-Expose-Headers: Location, Retry-After' "$tmp/head" || fail "Location not exposed"
expect 200 '"items"' -- "$u/notes/models/note" -H 'Origin: https://evil.example'
grep -qi '^Access-Control-Allow-Origin' "$tmp/head" && fail "a foreign origin may read"
# a bad origin in host.ini is a config error naming the line
printf '[http]\nallowed_origins = app.example/\n' >"$tmp/bad.ini"
set +e; out=$("$PH_BIN" -c "$tmp/bad.ini" check 2>&1); set -e
grep -qF "bad.ini:2: 'allowed_origins' in [http]: 'app.example/' is not an origin; write scheme://host[:port]" <<<"$out" \
  || fail "bad origin: $out"

# --- 4. an admin method relayed by a package ----------------------------------
expect 403 "pkgmgr.packages.disable is an admin method and package 'sec_fx' relayed a call" -- \
  -X POST "$u/sec_fx/actors/fx/relay" -H "$J" -d '{"name":"notes"}'
expect 200 '"state":"running"' -- -X POST "$u/pkgmgr/actors/packages/info" -H "$J" -d '{"name":"notes"}'
expect 200 '"result":"disabled; data kept"' -- -X POST "$u/sec_fx/actors/fx/relay" -H "$J" \
  -H "Authorization: Bearer $tok" -d '{"name":"notes"}'
expect 200 '"result":"running"' -- -X POST "$u/pkgmgr/actors/packages/enable" -H "$J" \
  -H "Authorization: Bearer $tok" -d '{"name":"notes"}'

# --- 7. input answered wrongly -------------------------------------------------
expect 400 "query parameter 'owner' is not UTF-8 text once %-decoded" -- "$u/notes/models/note?owner=%ff"
expect 400 "query parameter '%ff' is not UTF-8" -- "$u/notes/models/note?%ff=1"
expect 400 "query parameter 'order' is not UTF-8" -- "$u/notes/models/note?order=%ff"
expect 400 "query parameter 'owner' has a malformed or NUL %-escape" -- "$u/notes/models/note?owner=%zz"
for v in 1e400 -1e400 nan inf -Infinity; do
  expect 400 "query parameter 'f' must be a finite number that fits a double, not '$v'" -- \
    "$u/sec_fx/models/reading?f=$v"
done
expect 400 "query parameter 'f.gt' must be a finite number" -- "$u/sec_fx/models/reading?f.gt=nan"
expect 200 '"items"' -- "$u/sec_fx/models/reading?f=1.5e3"
order=$(python3 -c 'print(",".join(["id"] * 2001))')
expect 400 "'order' has more than 64 terms; order by at most 64 fields" -- "$u/notes/models/note?order=$order"
expect 400 "Content-Length headers that disagree" -- -X POST "$u/notes/models/note" -H "$J" \
  -H 'Content-Length: 17' -H 'Content-Length: 2' -d '{"title":"smug"}'
expect 400 "the request has both Content-Length and Transfer-Encoding; send one of them" -- \
  -X POST "$u/notes/models/note" -H "$J" -H 'Content-Length: 16' -H 'Transfer-Encoding: chunked' \
  -d '{"title":"smug"}'
# two Host headers (curl merges them, so the request is written by hand)
raw=$(python3 - "$port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET /notes/models/note HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n"
          b"Connection: close\r\n\r\n")
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
print(out.decode(errors="replace"))
PY
)
grep -q "^HTTP/1.1 400" <<<"$raw" && grep -q "the request has 2 Host headers; send one" <<<"$raw" ||
  fail "two Host headers: $raw"
expect 400 "the request has 2 Content-Type headers; send one" -- -X POST "$u/notes/models/note" \
  -H "$J" -H 'Content-Type: text/plain' -d '{"title":"two types"}'
# oversize request line and headers: the documented JSON error, not an HTML page
long=$(head -c 20000 /dev/zero | tr '\0' a)
expect 414 '"code":"uri_too_long"' -- "$u/notes/models/note?x=$long"
grep -qi '^Content-Type: application/json' "$tmp/head" || fail "414 not JSON: $(cat "$tmp/head")"
printf 'X-Big: %s\n' "$(head -c 40000 /dev/zero | tr '\0' b)" >"$tmp/hdr"
expect 431 '"code":"headers_too_large"' -- "$u/notes/models/note" -H @"$tmp/hdr"
grep -qi '^Content-Type: application/json' "$tmp/head" || fail "431 not JSON"
# a newline given to a package that logs it stays on its own line, escaped
expect 200 '1' -- -X POST "$u/sec_fx/actors/fx/say" -H "$J" \
  -d '{"text":"hi\n2026-01-01 00:00:00.000 error [notes] forged\u001b[31m"}'
sleep 0.2
grep -q 'said: hi\\n2026-01-01 00:00:00.000 error \[notes\] forged\\x1b\[31m$' "$tmp/run.log" \
  || fail "log line not escaped: $(grep -A1 'said:' "$tmp/run.log")"
grep -q '^2026-01-01 00:00:00.000 error \[notes\] forged' "$tmp/run.log" && fail "a forged log line"
[ "$(count)" -ge 1 ] || fail "host lost its data"
curl -s "$u/_/health" | grep -q '"status":"ok"' || fail "host unhealthy at the end"
if grep -E "ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error" "$tmp/run.log" >/dev/null; then
  fail "the server reported a sanitizer error: $(grep -m1 -E 'Sanitizer|runtime error' "$tmp/run.log")"
fi
echo "1 passed, 0 failed"
