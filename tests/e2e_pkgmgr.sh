#!/usr/bin/env bash
# The package manager plugin over real HTTP: open listing, admin-only
# changes, disable keeps data and enable brings the instance back, a
# dependent blocks disabling what it needs, and the web page is served.
set -euo pipefail
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/run.log" ] && tail -n 20 "$tmp/run.log"; exit 1; }
mkdir -p "$tmp/pk"
cp -r "$PH_EXAMPLES/pkgmgr" "$PH_EXAMPLES/hello" "$PH_EXAMPLES/greeter" "$PH_EXAMPLES/notes" "$tmp/pk/"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
u="http://127.0.0.1:$port"
"$PH_BIN" --packages "$tmp/pk" --data-dir "$tmp/data" run --listen "127.0.0.1:$port" >"$tmp/run.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do curl -sf -o /dev/null "$u/_/health?ready" && break; sleep 0.1; done
tok=$(cat "$tmp/data/admin.token")
post() { curl -s -X POST -H 'Content-Type: application/json' "$@"; }

list=$(post "$u/pkgmgr/actors/packages/list" -d '{}')
for i in pkgmgr hello greeter notes; do
  grep -q "\"instance\":\"$i\"" <<<"$list" || fail "list lacks $i: $list"
done
out=$(post "$u/pkgmgr/actors/packages/disable" -d '{"name":"notes"}')
grep -q '"code":"unauthorized"' <<<"$out" || fail "disable without token: $out"

post "$u/notes/models/note" -d '{"title":"kept"}' >/dev/null
out=$(post -H "Authorization: Bearer $tok" "$u/pkgmgr/actors/packages/disable" -d '{"name":"hello"}')
grep -q "instance 'greeter', which depends on it" <<<"$out" || fail "disabling hello under greeter: $out"
out=$(post -H "Authorization: Bearer $tok" "$u/pkgmgr/actors/packages/disable" -d '{"name":"notes"}')
grep -q '"result":"disabled; data kept"' <<<"$out" || fail "disable: $out"
code=$(curl -s -o /dev/null -w '%{http_code}' "$u/notes/models/note")
[ "$code" = 404 ] || fail "notes still served after disable ($code)"
grep -q '"state":"disabled"' <<<"$(post "$u/pkgmgr/actors/packages/info" -d '{"name":"notes"}')" \
  || fail "info does not show notes disabled"
out=$(post -H "Authorization: Bearer $tok" "$u/pkgmgr/actors/packages/enable" -d '{"name":"notes"}')
grep -q '"result":"running"' <<<"$out" || fail "enable: $out"
grep -q '"title":"kept"' <<<"$(curl -s "$u/notes/models/note")" || fail "data lost by disable/enable"
out=$(post -H "Authorization: Bearer $tok" "$u/pkgmgr/actors/packages/reload" -d '{"name":"hello"}')
grep -q '"result":"already running this build"' <<<"$out" || fail "reload: $out"
# remove and install from the package manager (ThreeBot's package_add(path)): data kept
cp -r "$tmp/pk/notes" "$tmp/notes-src"
out=$(post -H "Authorization: Bearer $tok" "$u/pkgmgr/actors/packages/remove" -d '{"name":"notes"}')
grep -q '"result":"removed; data kept"' <<<"$out" || fail "remove: $out"
[ ! -e "$tmp/pk/notes" ] || fail "remove left the directory"
code=$(curl -s -o /dev/null -w '%{http_code}' "$u/notes/models/note")
[ "$code" = 404 ] || fail "a removed package still serves: $code"
out=$(post -H "Authorization: Bearer $tok" "$u/pkgmgr/actors/packages/install" -d "{\"path\":\"$tmp/notes-src\"}")
grep -q '"state":"running"' <<<"$out" || fail "install: $out"
grep -q '"title":"kept"' <<<"$(curl -s "$u/notes/models/note")" || fail "data lost by remove/install"
out=$(post "$u/pkgmgr/actors/packages/install" -d "{\"path\":\"$tmp/notes-src\"}")
grep -q '"code":"unauthorized"' <<<"$out" || fail "install without token: $out"
mkdir -p "$tmp/bad-src"
printf '[package]\nname = bad\nversion = 1.0.0\n[requires]\nnosuch = ^1\n' >"$tmp/bad-src/package.ini"
cp "$tmp/pk/hello/hello.so" "$tmp/bad-src/bad.so"
out=$(post -H "Authorization: Bearer $tok" "$u/pkgmgr/actors/packages/install" -d "{\"path\":\"$tmp/bad-src\"}")
grep -q "bad 1.0.0 was not installed, nothing was changed: instance 'bad' could not run: " <<<"$out" || fail "bad install: $out"
[ ! -e "$tmp/pk/bad" ] || fail "a refused package was copied"
out=$(post -H "Authorization: Bearer $tok" "$u/pkgmgr/actors/packages/instance_new" \
  -d '{"instance":"memo","package":"notes","mount":"","parameters":{}}')
grep -q "the host was started without a host.ini, so there is no file to write instances to; start it with -c host.ini" \
  <<<"$out" || fail "instance_new without host.ini: $out"
curl -s "$u/pkgmgr/" | grep -q "<title>plughost packages</title>" || fail "web page not served"
if grep -E "ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error" "$tmp/run.log" >/dev/null; then
  fail "the server reported a sanitizer error: $(grep -m1 -E 'Sanitizer|runtime error' "$tmp/run.log")"
fi
echo "1 passed, 0 failed"
