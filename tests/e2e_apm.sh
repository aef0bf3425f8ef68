#!/usr/bin/env bash
# Issue 14 items 3, 4 and 6 against the real host: the lifecycle callbacks
# run at their documented moment and their failures have the documented
# effect (tests/apm/cb.c records every call to calls.log and fails the one
# named by a fail-NAME file); the `menu` extension point lists the items of
# two contributors, leaves out a contribution that does not fit its
# declaration (file:line in the log, before any code runs) and follows
# install and removal; the metadata shows in /_/packages and packages.info.
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
E2E_LOG_LINES=30
rec="$tmp/rec"
mkdir -p "$tmp/pk" "$tmp/src" "$rec"
cp -r "$PH_EXAMPLES/pkgmgr" "$tmp/pk/pkgmgr"

cb() { # DIR VERSION [NAME [CFLAGS]]: the callback fixture, contributing to the menu
  local name=${3:-cb}
  mkdir -p "$1"
  cat >"$1/package.ini" <<INI
[package]
name = $name
version = $2
summary = Records its lifecycle callbacks
license = MIT
kind = service
[parameters]
dir = $rec
[hook menu]
label = Callbacks
category = tests
url = /cb/
order = 5
INI
  cc -std=c11 -shared -fPIC -fvisibility=hidden -I"$PH_SOURCE_DIR/sdk/include" \
    -DPH_PACKAGE_NAME="\"$name\"" -DPH_PACKAGE_VERSION="\"$2\"" ${4:-} \
    -o "$1/$name.so" "$PH_SOURCE_DIR/tests/apm/cb.c" || fail "cc $name $2"
}
# a contributor whose item misses the required url: left out, the package still runs
build_pkg "$tmp/pk" badhook lifecycle/app.c
printf '[hook menu]\nlabel = Broken\ncategory = tests\n' >>"$tmp/pk/badhook/package.ini"
cb "$tmp/src/cb1" 1.0.0
cb "$tmp/src/cb2" 2.0.0
# a package built before the callbacks existed (its descriptor ends before them)
cb "$tmp/pk/old" 1.0.0 old -DOLD_DESCRIPTOR
sed -i 's/^label = Callbacks/label = Old/; s/^order = 5/order = 7/' "$tmp/pk/old/package.ini"

port=$(free_port)
url="http://127.0.0.1:$port"
cat >"$tmp/host.ini" <<INI
[host]
package_dirs = pk
data_dir = data
reload = false
[http]
listen = 127.0.0.1:$port
INI
ph() { "$PH_BIN" -c "$tmp/host.ini" --log-level error "$@"; }
calls() { cat "$rec/calls.log" 2>/dev/null; }
post() { curl -s -X POST -H 'Content-Type: application/json' "$@"; }
menu() { post -d '{}' "$url/pkgmgr/actors/packages/menu"; }
version() { ph call --url "$url" cb.cb.version 2>&1; }
start_host -c "$tmp/host.ini" --log-level info
wait_ready "$url"
tok=$(cat "$tmp/data/admin.token")
admin() { post -H "Authorization: Bearer $tok" "$@"; }

# --- metadata (item 6) ---
out=$(curl -s "$url/_/packages")
grep -q '"instance":"pkgmgr"[^}]*"kind":"application"' <<<"$out" &&
  grep -q '"license":"MIT"' <<<"$out" || fail "/_/packages without metadata: $out"
out=$(post -d '{"name":"pkgmgr"}' "$url/pkgmgr/actors/packages/info")
grep -q '"summary":"The package manager: install, reload, disable and remove packages"' <<<"$out" &&
  grep -q '"author":"plughost developers"' <<<"$out" || fail "packages.info without metadata: $out"
echo "  metadata in /_/packages and packages.info"

# --- a contribution that does not fit is left out before any code runs (item 3) ---
want="$tmp/pk/badhook/package.ini:4: [hook menu] gives no 'url' (string), which endpoint 'menu' of pkgmgr requires ($tmp/pk/pkgmgr/package.ini:"
grep -qF "$want" "$tmp/run.log" || fail "no warning naming badhook's file:line"
[ "$(ph call --url "$url" badhook.app.ping)" = 1 ] || fail "badhook does not run"
out=$(menu)
grep -qF "$want" <<<"$out" || fail "menu problems: $out"
grep -q '"label":"Broken"' <<<"$out" && fail "the broken item is listed: $out"
echo "  a contribution without a required parameter: left out, file:line said, its package runs"

# --- an old package without the callback fields loads and runs; none of them is called ---
[ "$(calls)" = "old 1.0.0 prepare
old 1.0.0 start" ] || fail "a descriptor without callbacks: $(calls)"
[ "$(ph call --url "$url" old.cb.version)" = '"1.0.0"' ] || fail "old does not run"
: >"$rec/calls.log"
echo "  a package built before the callbacks: loads, runs, none called"

# --- install: after_instantiate, after_mount, after_install, in that order (item 4) ---
out=$(ph install --url "$url" "$tmp/src/cb1" 2>&1) || fail "install cb 1.0.0: $out"
[ "$(calls)" = "cb 1.0.0 prepare
cb 1.0.0 start
cb 1.0.0 after_install
cb 1.0.0 after_instantiate
cb 1.0.0 after_mount /cb" ] || fail "install callbacks: $(calls)"
[ "$(cat "$tmp/data/.installed/cb")" = 1.0.0 ] || fail "after_install is not recorded"
[ "$(version)" = '"1.0.0"' ] || fail "cb after install: $(version)"
# three contributors, ordered by order: pkgmgr's Packages (0), cb's Callbacks (5), old's (7)
out=$(menu)
python3 - "$out" <<'PY' || fail "menu after install: $out"
import json, sys
d = json.loads(sys.argv[1])
got = [(i["package"], i["item"], i["label"], i.get("order")) for i in d["items"]]
assert got == [("pkgmgr", "packages", "Packages", 0), ("cb", "cb", "Callbacks", 5),
               ("old", "old", "Old", 7)], got
assert d["declared_by"] == "pkgmgr", d
PY
# the same list over HTTP for any client: GET /_/hooks/ENDPOINT (an unknown one is 404)
[ "$(curl -sf "$url/_/hooks/menu")" = "$out" ] || fail "GET /_/hooks/menu differs: $(curl -s "$url/_/hooks/menu")"
got=$(curl -s -w ' %{http_code}' "$url/_/hooks/nosuch" | tr -d '\n')
grep -qF "no installed package declares the endpoint 'nosuch'; a package declares one with [endpoint nosuch] in its package.ini\"}} 404" <<<"$got" ||
    fail "GET /_/hooks/nosuch: $got"
echo "  install: prepare, start, after_install, after_instantiate, after_mount; menu of two packages"
# a package declaring the menu pkgmgr declares cannot be installed to take it over
cb "$tmp/src/evil" 1.0.0 evil
printf '[endpoint menu]\nlabel = string\n' >>"$tmp/src/evil/package.ini"
out=$(ph install --url "$url" "$tmp/src/evil" 2>&1) && fail "an endpoint taken over: $out"
grep -qF "$tmp/src/evil/package.ini:14: package 'evil' declares [endpoint menu], which package 'pkgmgr' declares already ($tmp/pk/pkgmgr/package.ini:" <<<"$out" ||
  fail "the second declarer's refusal: $out"
[ -e "$tmp/pk/evil" ] && fail "the refused package was installed"
grep -q '"declared_by":"pkgmgr"' <<<"$(menu)" || fail "menu after the refusal: $(menu)"
echo "  a second declaration of an endpoint: install refused, naming both"

# --- before_upgrade refuses: the old version keeps serving and says so ---
: >"$rec/calls.log"
touch "$rec/fail-before_upgrade"
set +e; out=$(ph install --url "$url" "$tmp/src/cb2" 2>&1); set -e
grep -qF "instance 'cb': cb 1.0.0 refused the upgrade to 2.0.0: before_upgrade failed: before_upgrade says no (test); 1.0.0 keeps serving" <<<"$out$(cat "$tmp/run.log")" ||
  fail "a refused upgrade is not reported: $out"
[ "$(version)" = '"1.0.0"' ] || fail "cb after a refused upgrade: $(version)"
grep -q "cb 1.0.0 before_upgrade 1.0.0->2.0.0" <<<"$(calls)" || fail "before_upgrade: $(calls)"
# the refused version is not left on disk for the next start to run without its callbacks
grep -qF "plughost install: cb 2.0.0 was not installed; the package directory is as it was" <<<"$out" ||
  fail "a refused upgrade should say the install was undone: $out"
[ "$(ls "$tmp/pk" | tr '\n' ' ')" = "badhook cb old pkgmgr " ] || fail "a refused upgrade left files: $(ls -a "$tmp/pk")"
grep -q '^version = 1.0.0$' "$tmp/pk/cb/package.ini" || fail "cb's directory changed"
echo "  a failing before_upgrade: 1.0.0 keeps serving, said so; the package directory as it was"

# --- after_upgrade fails: rolled back ---
rm "$rec/fail-before_upgrade"
touch "$rec/fail-after_upgrade"
: >"$rec/calls.log"
set +e; out=$(ph install --url "$url" "$tmp/src/cb2" 2>&1); set -e
grep -qF "after_upgrade failed: after_upgrade says no (test); the upgrade 1.0.0 -> 2.0.0 is rolled back and 1.0.0 serves again" <<<"$out$(cat "$tmp/run.log")" ||
  fail "a failed after_upgrade is not reported: $out"
[ "$(version)" = '"1.0.0"' ] || fail "cb after a failed after_upgrade: $(version)"
grep -q "cb 2.0.0 after_upgrade 1.0.0->2.0.0" <<<"$(calls)" || fail "after_upgrade: $(calls)"
echo "  a failing after_upgrade: rolled back, 1.0.0 serves"

# --- the upgrade: before_upgrade on 1.0.0, after_upgrade on 2.0.0 after its start ---
rm "$rec/fail-after_upgrade"
: >"$rec/calls.log"
out=$(ph install --url "$url" "$tmp/src/cb2" 2>&1) || fail "install cb 2.0.0: $out"
[ "$(version)" = '"2.0.0"' ] || fail "cb after the upgrade: $(version)"
calls | grep -v "prepare\|stop" >"$tmp/got"
[ "$(cat "$tmp/got")" = "cb 1.0.0 before_upgrade 1.0.0->2.0.0
cb 2.0.0 start
cb 2.0.0 after_upgrade 1.0.0->2.0.0
cb 2.0.0 after_mount /cb" ] || fail "upgrade callbacks: $(calls)"
grep -q "after_install\|after_instantiate" <<<"$(calls)" && fail "an upgrade is no install: $(calls)"
echo "  upgrade: before_upgrade(1.0.0->2.0.0) on the old, after_upgrade and after_mount on the new"

# --- 1.0.0 stays installed beside 2.0.0: removing it runs no callback (no instance runs it) ---
: >"$rec/calls.log"
out=$(ph remove cb 2>&1) && fail "remove cb with two versions: $out"
grep -qF "package 'cb' is installed in 2 versions: 1.0.0, 2.0.0 (instance 'cb' runs it); say which one to remove: \`plughost remove cb@VERSION\`" <<<"$out" ||
  fail "remove cb with two versions: $out"
out=$(ph remove cb@1.0.0 2>&1) || fail "remove cb@1.0.0: $out"
grep -qF "removed package cb 1.0.0 ($tmp/pk/cb)" <<<"$out" || fail "remove cb@1.0.0: $out"
[ -z "$(calls)" ] && [ "$(version)" = '"2.0.0"' ] || fail "removing 1.0.0 touched 2.0.0: $(calls) $(version)"
echo "  remove cb@1.0.0 beside the running 2.0.0: no callback, 2.0.0 serves"

# --- before_uninstall refuses the removal ---
touch "$rec/fail-before_uninstall"
out=$(admin -d '{}' -w ' %{http_code}' "$url/_/remove/cb")
grep -qF "package 'cb' refused its removal (instance 'cb': before_uninstall failed: before_uninstall says no (test)); nothing was changed" <<<"$out" &&
  grep -q ' 409$' <<<"$out" || fail "a refused removal: $out"
[ -d "$tmp/pk/cb-2.0.0" ] && [ "$(version)" = '"2.0.0"' ] || fail "cb after a refused removal"
echo "  a failing before_uninstall: removal refused (409), cb runs"

# --- removal: before_uninstall(keep), before_delete; cb's item leaves the menu ---
rm "$rec/fail-before_uninstall"
: >"$rec/calls.log"
out=$(admin -d '{}' "$url/_/remove/cb")
grep -q '"result":"removed; data kept"' <<<"$out" || fail "remove: $out"
[ "$(calls)" = "cb 2.0.0 before_uninstall keep
cb 2.0.0 before_delete
cb 2.0.0 stop" ] || fail "remove callbacks: $(calls)"
out=$(menu)
grep -q '"package":"cb"' <<<"$out" && fail "cb's item outlived its package: $out"
grep -q '"package":"pkgmgr"' <<<"$out" || fail "menu after remove: $out"
echo "  remove: before_uninstall keep, before_delete, stop; its menu item is gone"

# --- after_install fails: the instance is stopped and failed, and it runs again next time ---
touch "$rec/fail-after_install"
: >"$rec/calls.log"
set +e; out=$(ph install --url "$url" "$tmp/src/cb1" 2>&1); rc=$?; set -e
[ "$(calls)" = "cb 1.0.0 prepare
cb 1.0.0 start
cb 1.0.0 after_install
cb 1.0.0 stop" ] || fail "a failing after_install: $(calls)"
out=$(curl -s "$url/_/packages")
grep -q '"instance":"cb"[^}]*"state":"failed"[^}]*after_install failed: after_install says no (test)' <<<"$out" ||
  fail "cb after a failing after_install: $out"
[ ! -e "$tmp/data/.installed/cb" ] || fail "a failed after_install is recorded as done"
rm "$rec/fail-after_install"
touch "$rec/fail-after_mount"
: >"$rec/calls.log"
out=$(admin -d '{}' "$url/_/enable/cb")
# --- after_mount fails (after_install runs again, the instance ran before: no after_instantiate) ---
grep -qF "after_mount failed: after_mount says no (test)" <<<"$out" || fail "enable with a failing after_mount: $out"
[ "$(calls)" = "cb 1.0.0 prepare
cb 1.0.0 start
cb 1.0.0 after_install
cb 1.0.0 after_mount /cb
cb 1.0.0 stop" ] || fail "after_mount failure: $(calls)"
echo "  a failing after_install / after_mount: stopped and failed with the message; retried at the next start"
rm "$rec/fail-after_mount"
: >"$rec/calls.log"
out=$(admin -d '{}' "$url/_/enable/cb")
[ "$(version)" = '"1.0.0"' ] || fail "cb after enable: $out $(version)"
grep -q "cb 1.0.0 after_install" <<<"$(calls)" || fail "after_install not retried: $(calls)"
echo "  enable afterwards: after_install, after_mount, cb runs"

# --- a new instance: after_instantiate fails (failed, retried), then runs; before_delete ---
touch "$rec/fail-after_instantiate"
: >"$rec/calls.log"
printf '[instance cb]\n[instance badhook]\n[instance old]\n[instance pkgmgr]\n[instance cb2]\npackage = cb\n' >>"$tmp/host.ini"
kill -HUP "$pid"
for _ in $(seq 1 100); do grep -q "cb2 1.0.0 stop" "$rec/calls.log" 2>/dev/null && break; sleep 0.1; done
[ "$(calls)" = "cb2 1.0.0 prepare
cb2 1.0.0 start
cb2 1.0.0 after_instantiate
cb2 1.0.0 stop" ] || fail "a failing after_instantiate: $(calls)"
out=$(curl -s "$url/_/packages")
grep -q '"instance":"cb2"[^}]*"state":"failed"[^}]*after_instantiate failed: after_instantiate says no (test)' <<<"$out" ||
  fail "cb2 state: $out"
rm "$rec/fail-after_instantiate"
: >"$rec/calls.log"
kill -HUP "$pid"
for _ in $(seq 1 100); do grep -q "cb2 1.0.0 after_mount" "$rec/calls.log" 2>/dev/null && break; sleep 0.1; done
grep -q "cb2 1.0.0 after_instantiate" <<<"$(calls)" || fail "after_instantiate not retried: $(calls)"
[ "$(ph call --url "$url" cb2.cb.version)" = '"1.0.0"' ] || fail "cb2 does not run"
: >"$rec/calls.log"
sed -i '/^\[instance cb2\]/,$d' "$tmp/host.ini" # cb, badhook, old and pkgmgr stay
kill -HUP "$pid"
for _ in $(seq 1 100); do grep -q "cb2 1.0.0 stop" "$rec/calls.log" 2>/dev/null && break; sleep 0.1; done
[ "$(calls)" = "cb2 1.0.0 before_delete
cb2 1.0.0 stop" ] || fail "an instance dropped from host.ini: $(calls)"
echo "  a new instance: after_instantiate (a failure fails it, retried); dropped: before_delete"

# --- the page's uninstall with purge, two instances: every instance's callbacks, purge passed ---
printf '[instance cb3]\npackage = cb\n' >>"$tmp/host.ini"
kill -HUP "$pid"
for _ in $(seq 1 100); do grep -q "cb3 1.0.0 after_mount" "$rec/calls.log" 2>/dev/null && break; sleep 0.1; done
uninstall() { admin -d '{"name":"cb","purge":true}' -w ' %{http_code}' "$url/pkgmgr/actors/packages/uninstall" | tr -d '\n'; }
touch "$rec/fail-before_uninstall"
: >"$rec/calls.log"
out=$(uninstall)
grep -q "refused its removal.* 409$" <<<"$out" || fail "a refused uninstall: $out"
grep -q " stop" <<<"$(calls)" && fail "a refused removal stopped an instance: $(calls)"
[ "$(ph call --url "$url" cb3.cb.version)" = '"1.0.0"' ] || fail "cb3 after a refused removal"
rm "$rec/fail-before_uninstall"
: >"$rec/calls.log"
out=$(uninstall)
grep -q '"purge":true' <<<"$out" || fail "uninstall with purge: $out"
for i in cb cb3; do
  grep -q "^$i 1.0.0 before_uninstall purge$" <<<"$(calls)" || fail "$i: before_uninstall(purge): $(calls)"
  grep -q "^$i 1.0.0 before_delete$" <<<"$(calls)" || fail "$i: before_delete: $(calls)"
done
echo "  uninstall with purge: before_uninstall(purge) and before_delete on both instances; refused: both run"

# --- the CLI's remove goes through the running host: callbacks run; without a host none can ---
out=$(ph install --url "$url" "$tmp/src/cb1" 2>&1) || fail "install cb 1.0.0 again: $out"
: >"$rec/calls.log"
out=$(ph remove --purge cb 2>&1) || fail "plughost remove --purge cb: $out"
grep -q "unloaded cb and removed it" <<<"$out" && grep -q "^cb: data deleted; a backup was written first: " <<<"$out" ||
  fail "plughost remove --purge cb: $out"
for i in cb cb3; do
  grep -q "^$i 1.0.0 before_uninstall purge$" <<<"$(calls)" || fail "CLI remove: $i: before_uninstall(purge): $(calls)"
  grep -q "^$i 1.0.0 before_delete$" <<<"$(calls)" || fail "CLI remove: $i: before_delete: $(calls)"
done
[ ! -e "$tmp/pk/cb" ] || fail "CLI remove left the directory"
stop_host
cp -r "$tmp/src/cb1" "$tmp/pk/cb"
: >"$rec/calls.log"
out=$(ph remove cb 2>&1) || fail "plughost remove cb without a host: $out"
grep -qF "no host is running (no socket at $tmp/data/plughost.sock): the package's before_uninstall and before_delete callbacks do not run (they run only in a running host)" <<<"$out" &&
  grep -qF "removed package cb 1.0.0 ($tmp/pk/cb)" <<<"$out" || fail "plughost remove cb without a host: $out"
[ -z "$(calls)" ] && [ ! -e "$tmp/pk/cb" ] || fail "remove without a host: $(calls)"
echo "  plughost remove: through the running host its callbacks run (purge passed); without one it says none can"
echo "1 passed, 0 failed"
