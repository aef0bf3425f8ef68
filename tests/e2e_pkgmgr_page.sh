#!/usr/bin/env bash
# Issue 14 items 2 and 5 over real HTTP, below the page: the package
# manager's overview (parameters, dependents, records per model), an
# archive uploaded as base64 JSON and installed (an unsigned one refused,
# naming why), remove keeping or purging data (the backup named), a new
# instance and edited parameters written to host.ini (comments and order
# kept; a read-only host.ini refused, naming it) and applied as SIGHUP
# does; and a package's wiki rendered from Markdown (safe mode, links
# between pages, an index, the source with .md).
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
cd "$tmp"
mkdir -p h/packages src
cp -r "$PH_EXAMPLES/pkgmgr" "$PH_EXAMPLES/hello" "$PH_EXAMPLES/greeter" h/packages/
cp -r "$PH_EXAMPLES/notes" src/notes
mkdir -p src/notes/wiki/guide
cat >src/notes/wiki/index.md <<'MD'
# Notes wiki
Start with [the setup](setup.md) or the [guide](guide/).
MD
cat >src/notes/wiki/setup.md <<'MD'
# Setting up notes
Back to [the index](./), see [usage](usage.md#top) and [elsewhere](https://example.org/x.md).

<script>alert("raw")</script><b onclick="x()">bold</b>

[bad](javascript:alert(1))
MD
printf '# Using notes\nUse it.\n' >src/notes/wiki/usage.md
printf '# Guide one\n' >src/notes/wiki/guide/one.md
printf '<script>alert(document.cookie)</script>\n' >src/notes/wiki/raw.html
printf '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>\n' >src/notes/wiki/pic.svg
printf '# Odd & name\n' >"src/notes/wiki/odd page.md"
"$PH_BIN" keygen --output . alice >/dev/null
"$PH_BIN" pack --sign alice.secret --output . src/notes >/dev/null || fail "pack"
mkdir -p unsigned && "$PH_BIN" pack --output unsigned src/notes >/dev/null || fail "pack unsigned"
port=$(free_port)
u="http://127.0.0.1:$port"
cat >h/host.ini <<INI
; the host of the page test
[host]
package_dirs = packages
data_dir = data

[http]
listen = 127.0.0.1:$port ; loopback only
max_body = 4194304

[trust]
$(cat alice.pub)

; greeter keeps its default greeting
[instance greeter]
package = greeter
INI
cp h/host.ini host.ini.before
start_host -c h/host.ini
wait_ready "$u"
tok=$(cat h/data/admin.token)
post() { curl -s -X POST -H 'Content-Type: application/json' "$@"; }
admin() { post -H "Authorization: Bearer $tok" "$@"; }
pm="$u/pkgmgr/actors/packages"

# --- overview ---
ov=$(post "$pm/overview" -d '{}')
python3 - "$ov" <<'PY' || fail "overview: $ov"
import json, sys
o = json.loads(sys.argv[1])
inst = {i["instance"]: i for i in o["instances"]}
assert inst["hello"]["dependents"] == ["greeter"], inst["hello"]
assert inst["greeter"]["dependencies"] == ["hello"], inst["greeter"]
assert inst["greeter"]["mount"] == "/greeter" and inst["greeter"]["configured"] is True
assert o["config"]["writable"] is True and o["config"]["path"].endswith("h/host.ini"), o["config"]
assert sorted(p["package"] for p in o["packages"]) == ["greeter", "hello", "pkgmgr"]
PY

# --- upload: refused without token, unsigned refused, signed installed ---
b64() { base64 -w0 "$1"; }
out=$(post "$pm/upload" -d "{\"filename\":\"notes-2.0.0.phpkg\",\"data\":\"$(b64 notes-2.0.0.phpkg)\"}")
grep -q '"code":"unauthorized"' <<<"$out" || fail "upload without token: $out"
out=$(admin "$pm/upload" -d "{\"filename\":\"notes-2.0.0.phpkg\",\"data\":\"$(b64 unsigned/notes-2.0.0.phpkg)\"}")
grep -q "unsigned" <<<"$out" || fail "unsigned upload: $out"
[ ! -e h/packages/notes ] || fail "a refused upload was installed"
out=$(admin "$pm/upload" -d '{"filename":"notes.tar","data":"AAAA"}')
grep -q "upload a distribution archive: a file named NAME-VERSION.phpkg" <<<"$out" || fail "bad name: $out"
out=$(admin "$pm/upload" -d '{"filename":"notes-2.0.0.phpkg","data":"%%%"}')
grep -q "the upload of notes-2.0.0.phpkg is not valid base64" <<<"$out" || fail "bad base64: $out"
# a library that is no ELF object for this machine (garbage, another machine's): refused as the
# archive's other checks are (403, not 500), named by the file the user uploaded, nothing installed
for kind in garbage foreign; do
  rm -rf "bad-$kind" && cp -r src/notes "bad-$kind" && mkdir -p "out-$kind"
  python3 - "bad-$kind/notes.so" "$kind" <<'PY'
import sys
p, kind = sys.argv[1], sys.argv[2]
d = bytearray(open(p, "rb").read())
if kind == "garbage": d = bytearray(b"this is no library\n")
else: d[18] = 183; d[19] = 0  # EM_AARCH64
open(p, "wb").write(bytes(d))
PY
  "$PH_BIN" pack --sign alice.secret --output "out-$kind" "bad-$kind" >/dev/null || fail "pack bad-$kind"
  out=$(admin -w ' %{http_code}' "$pm/upload" -d "{\"filename\":\"my $kind-2.0.0.phpkg\",\"data\":\"$(b64 out-$kind/notes-2.0.0.phpkg)\"}" | tr -d '\n')
  want="my $kind-2.0.0.phpkg: notes.so is not a 64-bit ELF shared object"
  [ $kind = foreign ] && want="my $kind-2.0.0.phpkg: notes.so was built for another machine (e_machine 183)"
  grep -qF "$want" <<<"$out" && grep -q ' 403$' <<<"$out" || fail "upload of a $kind library: $out"
  grep -q "uploads/\|\.phpkg\.\|XXXX" <<<"$out" && fail "the answer names the temporary file: $out"
  [ ! -e h/packages/notes ] || fail "a refused upload was installed"
done
out=$(admin "$pm/upload" -d "{\"filename\":\"../notes-2.0.0 (1).phpkg\",\"data\":\"$(b64 notes-2.0.0.phpkg)\"}")
grep -q '"state":"running"' <<<"$out" || fail "upload: $out"
grep -q '"archive":"../notes-2.0.0 (1).phpkg"' <<<"$out" || fail "upload names the archive: $out"
[ ! -e h/data/notes-2.0.0* ] || fail "an upload's name escaped uploads/"
[ -z "$(ls -A h/data/uploads)" ] || fail "the uploaded file was left: $(ls h/data/uploads)"
post "$u/notes/models/note" -d '{"title":"one"}' >/dev/null
post "$u/notes/models/note" -d '{"title":"two"}' >/dev/null
ov=$(post "$pm/overview" -d '{}')
python3 - "$ov" <<'PY' || fail "overview after upload: $ov"
import json, sys
inst = {i["instance"]: i for i in json.loads(sys.argv[1])["instances"]}
n = inst["notes"]
assert n["state"] == "running" and n["version"] == "2.0.0", n
assert n["data"]["models"]["note"] == 2, n["data"]
assert n["parameters"]["max_title"] == "200" and n["defaults"]["max_title"] == "200", n
PY

# --- wiki, rendered ---
page=$(curl -s "$u/notes/wiki/setup")
grep -q "<title>Setting up notes</title>" <<<"$page" || fail "wiki page title: $page"
grep -q '<a href="usage#top">usage</a>' <<<"$page" || fail "link between pages: $page"
grep -q '<a href="https://example.org/x.md">' <<<"$page" || fail "a link elsewhere was changed: $page"
grep -q '<a href="setup.md">markdown source</a>' <<<"$page" || fail "source link: $page"
grep -qi "<script>alert\|onclick\|javascript:" <<<"$page" && fail "raw HTML passed through: $page"
grep -q "raw HTML omitted" <<<"$page" || fail "safe mode: $page"
ct=$(curl -s -o /dev/null -w '%{content_type}' "$u/notes/wiki/setup")
[ "$ct" = "text/html; charset=utf-8" ] || fail "wiki page type: $ct"
src=$(curl -s -w ' %{content_type}' "$u/notes/wiki/setup.md")
grep -q '^# Setting up notes' <<<"$src" && grep -q 'text/markdown' <<<"$src" || fail "source: $src"
idx=$(curl -s "$u/notes/wiki/")
grep -q '<a href="setup">the setup</a>' <<<"$idx" || fail "index.md rendered: $idx"
grep -q '<li><a href="setup">Setting up notes</a></li>' <<<"$idx" || fail "index lists pages: $idx"
grep -q '<li><a href="guide/">guide/</a></li>' <<<"$idx" || fail "index lists directories: $idx"
grep -q '<a href="usage">Using notes</a>' <<<"$idx" || fail "index lists usage: $idx"
grep -q '<li><a href="odd%20page">Odd &amp; name</a></li>' <<<"$idx" || fail "odd names: $idx"
grep -q '<title>Odd &amp; name</title>' <<<"$(curl -s "$u/notes/wiki/odd%20page")" || fail "odd page"
grep -q '<li><a href="one">Guide one</a></li>' <<<"$(curl -s "$u/notes/wiki/guide/")" || fail "sub index"
# raw HTML and SVG in wiki/ are sandboxed: no script in the host's origin
for f in raw.html pic.svg; do
  hdr=$(curl -s -D - -o /dev/null "$u/notes/wiki/$f" | tr -d '\r')
  grep -qi '^Content-Security-Policy: sandbox$' <<<"$hdr" || fail "wiki/$f without the sandbox: $hdr"
  grep -qi '^X-Content-Type-Options: nosniff$' <<<"$hdr" || fail "wiki/$f without nosniff: $hdr"
done
grep -qi '^Content-Security-Policy' <<<"$(curl -s -D - -o /dev/null "$u/notes/wiki/setup")" \
  && fail "a rendered wiki page is sandboxed"
code=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$u/notes/wiki")
[ "$code" = "301 $u/notes/wiki/" ] || fail "wiki without slash: $code"
for bad in nosuch "..%2fpackage.ini" "%2e%2e/package.ini" "guide/..%2f..%2fpackage.ini"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$u/notes/wiki/$bad")
  [ "$code" = 404 ] || [ "$code" = 403 ] || [ "$code" = 400 ] || fail "wiki/$bad answered $code"
done

# --- instances in host.ini ---
out=$(admin "$pm/instance_new" -d '{"instance":"memo","package":"notes","mount":"/memo","parameters":{"max_title":"20"}}')
grep -q '"result":"written to host.ini; the host applies it now (as on SIGHUP)"' <<<"$out" || fail "instance_new: $out"
grep -q '"state":"running"' <<<"$out" || fail "instance_new does not say the instance runs: $out"
for _ in $(seq 1 100); do
  grep -q '"instance":"memo","package":"notes"' <<<"$(post "$pm/list" -d '{}')" && \
    curl -sf -o /dev/null "$u/memo/models/note" && break
  sleep 0.1
done
grep -q '"total":2' <<<"$(curl -s "$u/notes/models/note")" || fail "the default instance notes went away"
grep -q '^\[instance notes\]$' h/host.ini || fail "the default instance was not kept in host.ini"
code=$(post -o /dev/null -w '%{http_code}' "$u/memo/models/note" -d '{"title":"this title is far too long"}')
[ "$code" = 422 ] || [ "$code" = 400 ] || fail "memo's own max_title (20) not applied: $code"
grep -q '^\[instance memo\]$' h/host.ini || fail "host.ini lacks the section: $(cat h/host.ini)"
head -n "$(wc -l <host.ini.before)" h/host.ini | cmp -s - host.ini.before || fail "host.ini's old lines changed: $(diff host.ini.before h/host.ini)"
out=$(admin "$pm/instance_new" -d '{"instance":"memo","package":"notes","mount":"","parameters":{}}')
grep -q "an instance named 'memo' exists already" <<<"$out" || fail "duplicate instance: $out"
out=$(admin "$pm/instance_set" -d '{"instance":"memo","parameters":{"colour":"red"}}')
grep -q "package 'notes' declares no parameter 'colour'" <<<"$out" || fail "undeclared parameter: $out"
out=$(admin "$pm/instance_set" -d '{"instance":"memo","parameters":{"max_title":300}}')
grep -q '"applying":true' <<<"$out" || fail "instance_set: $out"
grep -q '^max_title = 300$' h/host.ini || fail "max_title not written: $(cat h/host.ini)"
[ "$(grep -c max_title h/host.ini)" = 1 ] || fail "max_title written twice: $(cat h/host.ini)"
for _ in $(seq 1 100); do
  grep -q '"max_title":"300"' <<<"$(post "$pm/overview" -d '{}')" && break; sleep 0.1
done
grep -q '"max_title":"300"' <<<"$(post "$pm/overview" -d '{}')" || fail "max_title 300 not applied"
chmod 0444 h/host.ini
out=$(admin "$pm/instance_set" -d '{"instance":"memo","parameters":{"max_title":"40"}}')
grep -q "h/host.ini is not writable by the host (the file); nothing was changed" <<<"$out" \
  || fail "read-only host.ini: $out"
grep -q '"writable":false' <<<"$(post "$pm/overview" -d '{}')" || fail "overview: host.ini writable"
chmod 0644 h/host.ini
grep -q '^max_title = 300$' h/host.ini || fail "a refused change was written"
# a new instance the host could not load is refused with the reader's message; nothing written
cp h/host.ini host.ini.good
for m in noslash /_ / "/a b" /a/../b /x=y "/[x]"; do
  out=$(admin -w ' %{http_code}' "$pm/instance_new" -d "{\"instance\":\"m1\",\"package\":\"notes\",\"mount\":\"$m\",\"parameters\":{}}" | tr -d '\n')
  grep -qF "host.ini:27: invalid mount '$m' for [instance m1]: " <<<"$out" &&
    grep -q '; nothing was changed".* 400$' <<<"$out" \
    || fail "mount '$m' not refused: $out"
  cmp -s h/host.ini host.ini.good || fail "mount '$m' changed host.ini: $(diff host.ini.good h/host.ini)"
done
out=$(admin -w ' %{http_code}' "$pm/instance_new" -d '{"instance":"m1","package":"notes","mount":"/m1","parameters":{"nosuch":"x"}}' | tr -d '\n')
grep -q "package 'notes' declares no parameter 'nosuch'; its parameters are: max_title.* 400$" <<<"$out" \
  || fail "unknown parameter not refused: $out"
out=$(admin -w ' %{http_code}' "$pm/instance_new" -d '{"instance":"m1","package":"notes","mount":"/pkgmgr","parameters":{}}' | tr -d '\n')
grep -q "instance 'pkgmgr' is mounted at /pkgmgr already; choose another mount.* 409$" <<<"$out" \
  || fail "taken mount not refused: $out"
out=$(admin -w ' %{http_code}' "$pm/instance_new" -d '{"instance":"memo2","package":"notes","mount":"/memo","parameters":{}}' | tr -d '\n')
grep -q "instance 'memo' is mounted at /memo already" <<<"$out" || fail "memo's mount not refused: $out"
cmp -s h/host.ini host.ini.good || fail "a refused instance changed host.ini: $(diff host.ini.good h/host.ini)"

# the same new name from four requests at once (a double click, two administrators): one is
# written and runs, the others are told another change is being applied (or, once it is, that
# the name is taken); host.ini holds it once
twins=()
for i in 1 2 3 4; do
  admin -w ' %{http_code}' "$pm/instance_new" -d "{\"instance\":\"twin\",\"package\":\"notes\",\"mount\":\"/twin$i\",\"parameters\":{}}" >"twin.$i" &
  twins+=($!)
done
wait "${twins[@]}"
ok=0 taken=0 answers=""
for f in twin.*; do
  a=$(tr -d '\n' <"$f") # the body, then its status
  answers+="$a; "
  if grep -q '"state":"running"} 200$' <<<"$a"; then ok=$((ok + 1)); fi
  if grep -qE "(an instance named 'twin' exists already; choose another name|another change of host.ini from this page is being applied; retry once it is done)\"\}\} 409$" <<<"$a"; then taken=$((taken + 1)); fi
done
[ "$ok" = 1 ] && [ "$taken" = 3 ] || fail "four instance_new of 'twin' at once: $answers"
[ "$(grep -c '^\[instance twin\]' h/host.ini)" = 1 ] || fail "host.ini after four instance_new of 'twin': $(cat h/host.ini)"


# --- remove: keep, then purge with the backup named ---
out=$(admin "$pm/uninstall" -d '{"name":"notes","purge":false}')
grep -q '"result":"removed; data kept"' <<<"$out" || fail "remove notes: $out"
code=$(curl -s -o /dev/null -w '%{http_code}' "$u/memo/models/note")
[ "$code" = 404 ] || fail "memo still served after its package was removed: $code"
grep -q '"result":"data kept; reinstalling finds it","path":"[^"]*notes.db"' <<<"$out" || fail "kept path: $out"
out=$(admin "$pm/upload" -d "{\"filename\":\"notes-2.0.0.phpkg\",\"data\":\"$(b64 notes-2.0.0.phpkg)\"}")
grep -q '"state":"running"' <<<"$out" || fail "reinstall: $out"
grep -q '"total":2' <<<"$(curl -s "$u/notes/models/note")" || fail "data lost by remove/reinstall"
out=$(admin "$pm/uninstall" -d '{"name":"notes","purge":true}')
grep -q '"result":"removed; data deleted after a backup"' <<<"$out" || fail "purge: $out"
backup=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print([x for x in d["data"] if x["instance"]=="notes"][0]["backup"])' "$out")
[ -s "$backup" ] || fail "the purge backup $backup is missing"
[ ! -e h/data/notes/notes.db ] || fail "purge left the database"
if grep -E "ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error" "$tmp/run.log" >/dev/null; then
  fail "the server reported a sanitizer error: $(grep -m1 -E 'Sanitizer|runtime error' "$tmp/run.log")"
fi
echo "1 passed, 0 failed"
