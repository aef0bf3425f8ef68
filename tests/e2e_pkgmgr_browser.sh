#!/usr/bin/env bash
# Issue 14 item 2, acceptance 2: the package manager page in headless
# Chromium, driven through the DevTools protocol (tests/support/pkgmgr_walk.py,
# python3-websocket): an administrator gives the token, uploads an archive made
# with `plughost pack`, sees it running, disables it (after a confirmation),
# enables it and removes it keeping its data; the page is checked at phone
# width. Screenshots: $PH_BUILD_DIR/artifacts/pkgmgr-*.png.
# Skips (exit 77) only when Chromium or python3-websocket is missing or
# Chromium cannot start here.
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "SKIP: chromium is not installed (make deps installs it)"; exit 77; }
cd "$tmp"
mkdir -p h/packages src
cp -r "$PH_EXAMPLES/pkgmgr" "$PH_EXAMPLES/hello" h/packages/
# hello adds two menu items: a link, and a javascript: url the host leaves out
printf '[hook menu]\nlabel = Hello\ncategory = apps\nurl = /hello/\n[hook menu evil]\nlabel = Evil\ncategory = apps\nurl = javascript:alert(1)\n' \
  >>h/packages/hello/package.ini
cp -r "$PH_EXAMPLES/notes" src/notes
mkdir -p src/notes/wiki && printf '# Notes\nShort notes.\n' >src/notes/wiki/index.md
"$PH_BIN" pack --output . src/notes >/dev/null || fail "pack"
port=$(free_port)
u="http://127.0.0.1:$port"
printf '[host]\npackage_dirs = packages\ndata_dir = data\n[http]\nlisten = 127.0.0.1:%s\nmax_body = 8388608\n[trust]\nallow_unsigned = yes\n' \
  "$port" >h/host.ini
start_host -c h/host.ini
wait_ready "$u"
shots="$PH_BUILD_DIR/artifacts"
rm -f "$shots"/pkgmgr-*.png
rc=0
# Debian's python3 holds python3-websocket; another python3 may come first on PATH
py=python3
for c in /usr/bin/python3 python3; do
  if "$c" -c 'import websocket' 2>/dev/null; then py=$c; break; fi
done
timeout 250 "$py" "$PH_SOURCE_DIR/tests/support/pkgmgr_walk.py" "$browser" "$u/pkgmgr/" \
  "$tmp/notes-2.0.0.phpkg" "$(cat h/data/admin.token)" "$shots" "$tmp/profile" || rc=$?
[ "$rc" = 77 ] && exit 77
[ "$rc" = 0 ] || fail "the walk through the page failed ($rc)"
[ ! -e h/packages/notes ] || fail "notes is still installed after remove"
[ -e h/data/notes/notes.db ] || fail "remove did not keep the data"
ls "$shots"/pkgmgr-*.png >/dev/null || fail "no screenshots"
if grep -E "ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error" "$tmp/run.log" >/dev/null; then
  fail "the server reported a sanitizer error: $(grep -m1 -E 'Sanitizer|runtime error' "$tmp/run.log")"
fi
echo "1 passed, 0 failed"
