#!/usr/bin/env bash
# Acceptance 4 of issue 9, in a real browser (headless Chromium from Debian):
# a page from another origin (a second 127.0.0.1 port) tries every way a web
# page can write to the host - fetch with mode no-cors and a Blob, text or
# form body, CORS fetches that need a preflight (POST JSON, PATCH, DELETE),
# sendBeacon and a submitted HTML form - and nothing changes; a same-origin
# page drives the package manager page (/pkgmgr/): disable and enable work.
# Skips (exit 77) only when chromium is missing or cannot start here.
set -euo pipefail
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/run.log" ] && tail -n 20 "$tmp/run.log"; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "SKIP: chromium is not installed (make deps installs it)"; exit 77
fi
chrome() { # URL: prints the DOM once the page's scripts have run
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions \
    --user-data-dir="$tmp/profile" --virtual-time-budget=60000 --dump-dom "$1" 2>>"$tmp/chrome.log"
}
if ! chrome "data:text/html,<p id=x></p><script>x.textContent='scripts run'</script>" | grep -q "scripts run"; then
  echo "SKIP: chromium cannot run here: $(tail -n 3 "$tmp/chrome.log")"; exit 77
fi
mkdir -p "$tmp/pk" "$tmp/evil"
cp -r "$PH_EXAMPLES/pkgmgr" "$PH_EXAMPLES/notes" "$PH_FIXTURES/sec_fx" "$tmp/pk/"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
u="http://127.0.0.1:$port"
"$PH_BIN" --packages "$tmp/pk" --data-dir "$tmp/data" run --listen "127.0.0.1:$port" >"$tmp/run.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do curl -sf -o /dev/null "$u/_/health?ready" && break; sleep 0.1; done
tok=$(cat "$tmp/data/admin.token")
J='Content-Type: application/json'
curl -s -X POST -H "$J" "$u/notes/models/note" -d '{"title":"original"}' | grep -q '"id":1' || fail "seed note"

# --- the cross-origin page ---
cat >"$tmp/evil/evil.html" <<HTML
<!doctype html><html><body><pre id="result">running</pre>
<iframe name="sink" style="display:none"></iframe>
<form id="form" method="POST" action="$u/notes/models/note" enctype="text/plain" target="sink">
<input name='{"title":"evil-form","x":"' value='"}'></form>
<script>
"use strict";
const host = "$u", out = [];
async function attempt(what, url, opts) {
  try { const r = await fetch(host + url, opts); out.push(what + " answered " + (r.type === "opaque" ? "opaque" : r.status)); }
  catch (e) { out.push(what + " blocked"); }
}
(async () => {
  const json = JSON.stringify({title: "evil"});
  await attempt("blob", "/notes/models/note", {method: "POST", mode: "no-cors", body: new Blob([json])});
  await attempt("text", "/notes/models/note", {method: "POST", mode: "no-cors", body: json});
  await attempt("form", "/notes/models/note", {method: "POST", mode: "no-cors", body: new URLSearchParams({a: "1"})});
  await attempt("method", "/sec_fx/actors/fx/say", {method: "POST", mode: "no-cors", body: '{"text":"evil"}'});
  await attempt("json", "/notes/models/note", {method: "POST", headers: {"Content-Type": "application/json"}, body: json});
  await attempt("patch", "/notes/models/note/1", {method: "PATCH", headers: {"Content-Type": "application/json"}, body: json});
  await attempt("delete", "/notes/models/note/1", {method: "DELETE"});
  await attempt("delete-no-cors", "/notes/models/note/1", {method: "DELETE", mode: "no-cors"});
  await attempt("disable", "/pkgmgr/actors/packages/disable", {method: "POST", mode: "no-cors", body: '{"name":"notes"}'});
  await attempt("read", "/notes/models/note", {});
  out.push("beacon queued " + navigator.sendBeacon(host + "/notes/models/note", new Blob([json])));
  document.getElementById("form").submit();
  await new Promise(r => setTimeout(r, 1500));
  out.push("done");
  document.getElementById("result").textContent = out.join("\\n");
})();
</script></body></html>
HTML
eport=$(free_port)
python3 -m http.server "$eport" --bind 127.0.0.1 --directory "$tmp/evil" >"$tmp/evil.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$eport/evil.html" && break; sleep 0.1; done
refused() { curl -s "$u/_/metrics" | sed -n 's/^plughost_http_responses_total{code="4xx"} //p'; }
before=$(refused)
dom=$(chrome "http://127.0.0.1:$eport/evil.html")
grep -q "^done" <<<"$dom" || fail "the cross-origin page did not finish: $dom"
echo "cross-origin page:"; sed -n '/<pre id="result">/,/done/p' <<<"$dom" | sed 's/<[^>]*>//g; s/^/  /'
for w in json patch delete read; do grep -q "^$w blocked" <<<"$dom" || fail "$w was not blocked: $dom"; done
sleep 0.5
notes=$(curl -s "$u/notes/models/note")
grep -q '"total":1' <<<"$notes" || fail "the cross-origin page created or deleted notes: $notes"
grep -q '"title":"original"' <<<"$notes" || fail "the cross-origin page changed note 1: $notes"
curl -s -X POST -H "$J" "$u/pkgmgr/actors/packages/info" -d '{"name":"notes"}' | grep -q '"state":"running"' \
  || fail "the cross-origin page disabled notes"
grep -q 'said: evil' "$tmp/run.log" && fail "the cross-origin page ran a method"
# the writes reached the host and were refused there (not only by the browser)
after=$(refused)
[ $((after - before)) -ge 6 ] || fail "the host refused only $((after - before)) requests of the page"
echo "  the host refused $((after - before)) requests of the cross-origin page"
[ "$(grep -c 'evil' "$tmp/run.log" || true)" = 0 ] || fail "log mentions evil: $(grep evil "$tmp/run.log")"

# --- a same-origin page: the package manager page, used through its buttons ---
dom=$(chrome "$u/sec_fx/drive.html?token=$tok")
echo "same-origin page:"; sed -n '/<pre id="result">/,/done/p' <<<"$dom" | sed 's/<[^>]*>//g; s/^/  /'
grep -q "^done" <<<"$dom" || fail "the same-origin page did not finish: $dom"
grep -q "error" <<<"$(sed -n '/<pre id="result">/,/done/p' <<<"$dom")" && fail "same-origin page: $dom"
grep -q "listed notes running" <<<"$dom" || fail "the package manager page did not list notes"
grep -q "without token: unauthorized: pkgmgr.packages.disable is an admin method" <<<"$dom" || fail "no token: $dom"
grep -q "disable: notes: disabled; data kept" <<<"$dom" || fail "disable from the page: $dom"
grep -q "after disable notes disabled" <<<"$dom" || fail "state after disable: $dom"
grep -q "enable: notes: running" <<<"$dom" || fail "enable from the page: $dom"
grep -q "same-origin create 201" <<<"$dom" || fail "same-origin create: $dom"
grep -q '"total":2' <<<"$(curl -s "$u/notes/models/note")" || fail "the same-origin note is missing"
if grep -E "ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error" "$tmp/run.log" >/dev/null; then
  fail "the server reported a sanitizer error: $(grep -m1 -E 'Sanitizer|runtime error' "$tmp/run.log")"
fi
echo "1 passed, 0 failed"
