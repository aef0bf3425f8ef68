#!/usr/bin/env bash
# Issue 13, acceptance 3, with the real binary and real builds: shop 1.0.0,
# 1.1.0 and 1.2.0 (tests/packages/mig_shop_*) installed side by side, a
# requirer accepting <1.2: the host runs 1.1.0 and `check` says why not the
# others; host.ini `version = 1.0.0` pins (rolls back to) 1.0.0. Item 7: an
# optional dependency out of range leaves its user running, and /_/packages
# and `plughost status` say so.
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
mkdir -p "$tmp/pk"
for r in 100 110 120; do
    cp -r "$PH_FIXTURES/mig_shop_$r/shop" "$tmp/pk/shop-$r"
done
cp -r "$PH_FIXTURES/core_good" "$tmp/pk/core_good"
printf '\n[requires]\nshop = <1.2\n' >>"$tmp/pk/core_good/package.ini"

out=$("$PH_BIN" --packages "$tmp/pk" --data-dir "$tmp/data" --log-level error check 2>&1) ||
    fail "check should pass: $out"
grep -Eq 'shop +shop 1\.1\.0 .*\[ok\]' <<<"$out" || fail "shop 1.1.0 should be chosen: $out"
grep -Eq 'core_good +core_good 1\.0\.0 +needs shop +\[ok\]' <<<"$out" || fail "core_good: $out"
grep -qF "  - package 'shop': 1.1.0 chosen; not 1.2.0: outside <1.2 of core_good 1.0.0; not 1.0.0: lower" \
    <<<"$out" || fail "the note on the choice: $out"
got=$("$PH_BIN" --packages "$tmp/pk" --data-dir "$tmp/data" --log-level error call --local \
    shop.item.count 2>&1) || fail "calling the chosen build: $got"
[ "$got" = 0 ] || fail "shop.item.count: $got"

cat >"$tmp/host.ini" <<INI
[host]
package_dirs = pk
data_dir = data2

[instance shop]
version = 1.0.0
INI
out=$("$PH_BIN" -c "$tmp/host.ini" --log-level error check 2>&1) || fail "pinned check: $out"
grep -Eq 'shop +shop 1\.0\.0 .*\[ok\]' <<<"$out" || fail "the pin should select 1.0.0: $out"
grep -qF "package 'shop': 1.0.0 chosen (pinned to 1.0.0 in $tmp/host.ini:6)" <<<"$out" ||
    fail "the note should name the pin: $out"

printf '[host]\npackage_dirs = pk\ndata_dir = data2\n\n[instance shop]\nversion = ~=1.0\n' \
    >"$tmp/host.ini"
out=$("$PH_BIN" -c "$tmp/host.ini" --log-level error check 2>&1) && fail "a bad pin should fail: $out"
grep -qF "host.ini:6: 'version' in [instance shop]: invalid range '~=1.0': '~=' is Python's" \
    <<<"$out" || fail "the bad pin's message: $out"

# ---- item 7: optional and out of range: runs without it, and says so ----
sed -i 's/^\[requires\]$/[optional]/; s/^shop = <1.2$/shop = ^9/' "$tmp/pk/core_good/package.ini"
port=$(free_port)
"$PH_BIN" --packages "$tmp/pk" --data-dir "$tmp/data3" --log-level warn run --listen "127.0.0.1:$port" \
    >"$tmp/run.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do curl -sf -o /dev/null "http://127.0.0.1:$port/_/health?ready" && break; sleep 0.1; done
pk=$(curl -sf "http://127.0.0.1:$port/_/packages") || fail "/_/packages: $(tail -3 "$tmp/run.log")"
note="package 'core_good' 1.0.0 optionally uses shop ^9 but shop 1.2.0 is installed; running without it"
python3 - "$pk" "$note" <<'PY' || fail "/_/packages should show core_good running with the note: $pk"
import json, sys
items = {i["instance"]: i for i in json.loads(sys.argv[1])["instances"]}
g = items["core_good"]
assert g["state"] == "running" and sys.argv[2] in g["note"], g
assert items["shop"]["version"] == "1.2.0", items["shop"]
PY
st=$("$PH_BIN" --listen "127.0.0.1:$port" status 2>&1) || fail "status: $st"
grep -F "$note" <<<"$st" | grep -Eq '^core_good .* running ' || fail "status should show the note: $st"
stop_host

# ---- provides: a requirement on a capability gets the provider in range ----
mkdir -p "$tmp/pk2"
cp -r "$PH_FIXTURES/core_good" "$tmp/pk2/core_good"
cp -r "$PH_FIXTURES/core_caller" "$tmp/pk2/core_caller"
printf '\n[provides]\nprobe-api = 1.4.0\n' >>"$tmp/pk2/core_good/package.ini"
sed -i 's/^core_good = .*$/probe-api = ^1/' "$tmp/pk2/core_caller/package.ini"
out=$("$PH_BIN" --packages "$tmp/pk2" --data-dir "$tmp/data4" --log-level error check 2>&1) ||
    fail "check with a capability should pass: $out"
grep -Eq 'core_caller +core_caller 1\.0\.0 +needs core_good +\[ok\]' <<<"$out" ||
    fail "core_caller should need the provider: $out"
grep -qF "  - capability 'probe-api': core_good 1.0.0 provides 1.4.0, used by core_caller 1.0.0" \
    <<<"$out" || fail "check should say who provides what: $out"
# what each package provides: list (text and JSON), check (text and JSON), /_/packages
ph2() { "$PH_BIN" --packages "$tmp/pk2" --data-dir "$tmp/data4" --log-level error "$@"; }
out=$(ph2 list) || fail "list: $out"
grep -A2 '^core_good ' <<<"$out" | grep -Eq '^ +provides probe-api 1\.4\.0$' || fail "list should show what core_good provides: $out"
ph2 list --json | python3 -c 'import json,sys; p={x["name"]: x for x in json.load(sys.stdin)["packages"]}; assert p["core_good"]["provides"] == {"probe-api": "1.4.0"} and p["core_caller"]["provides"] == {}, p' ||
    fail "list --json should carry provides"
out=$(ph2 check) || fail "check: $out"
grep -A1 -E '^ +[0-9]+\. core_good ' <<<"$out" | grep -Eq '^ +provides probe-api 1\.4\.0$' || fail "check should show what core_good provides: $out"
ph2 check --json | python3 -c 'import json,sys; i={x["instance"]: x for x in json.load(sys.stdin)["instances"]}; assert i["core_good"]["provides"] == {"probe-api": "1.4.0"}, i' ||
    fail "check --json should carry provides"
port=$(free_port)
start_host --packages "$tmp/pk2" --data-dir "$tmp/data4" --log-level warn --listen "127.0.0.1:$port"
wait_ready "http://127.0.0.1:$port"
pk=$(curl -sf "http://127.0.0.1:$port/_/packages") || fail "/_/packages: $pk"
python3 -c 'import json,sys; i={x["instance"]: x for x in json.loads(sys.argv[1])["instances"]}; assert i["core_good"]["provides"] == {"probe-api": "1.4.0"} and "provides" not in i["core_caller"], i' "$pk" ||
    fail "/_/packages should carry provides: $pk"
stop_host
# a second provider: the highest serves, unless host.ini [provides] pins one (checked, file:line)
build_pkg "$tmp/pk2" alt_probe lifecycle/app.c
printf '[provides]\nprobe-api = 1.9.0\n' >>"$tmp/pk2/alt_probe/package.ini"
grep -Eq 'core_caller +core_caller 1\.0\.0 +needs alt_probe +\[ok\]' <<<"$(ph2 check 2>&1)" ||
    fail "the highest provider should serve: $(ph2 check 2>&1)"
printf '[host]\npackage_dirs = pk2\ndata_dir = data4\n\n[provides]\nprobe-api = core_good\n' >"$tmp/host2.ini"
out=$("$PH_BIN" -c "$tmp/host2.ini" --log-level error check 2>&1) || fail "pinned provider: $out"
grep -Eq 'core_caller +core_caller 1\.0\.0 +needs core_good +\[ok\]' <<<"$out" &&
    grep -qF "  - capability 'probe-api': core_good 1.0.0 provides 1.4.0, used by core_caller 1.0.0 (pinned in $tmp/host2.ini:6)" <<<"$out" ||
    fail "the pin should choose core_good: $out"
sed -i 's/^probe-api = core_good$/probe-api = nosuch/' "$tmp/host2.ini"
out=$("$PH_BIN" -c "$tmp/host2.ini" --log-level error check 2>&1) && fail "a pin on no package should fail: $out"
grep -qF "  - $tmp/host2.ini:6: [provides] probe-api = nosuch: no package 'nosuch' is installed; the providers of probe-api are alt_probe, core_good" <<<"$out" ||
    fail "the bad pin's message: $out"
rm -rf "$tmp/pk2/alt_probe"
sed -i 's/^probe-api = .*$/probe-api = ^2/' "$tmp/pk2/core_caller/package.ini"
out=$("$PH_BIN" --packages "$tmp/pk2" --data-dir "$tmp/data4" --log-level error check 2>&1) &&
    fail "no provider in range should fail: $out"
grep -qF "package 'core_caller' 1.0.0 requires probe-api ^2, a capability no running provider suits: core_good 1.0.0 provides probe-api 1.4.0 (outside ^2)" \
    <<<"$out" || fail "the message on a capability no provider suits: $out"

# ---- side by side with the CLI: `plughost install` adds a version beside the others ----
for v in 1.0.0 1.1.0 2.0.0; do PH_PKG_VERSION=$v build_pkg "$tmp/src3/$v" base lifecycle/app.c; done
for r in left right top; do build_pkg "$tmp/src3" $r lifecycle/app.c; done
printf '[requires]\nbase = ^1.0\n' >>"$tmp/src3/left/package.ini"
printf '[requires]\nbase = >=1.1\n' >>"$tmp/src3/right/package.ini"
printf '[requires]\nbase = ^2\n' >>"$tmp/src3/top/package.ini"
mkdir -p "$tmp/pk3"
port=$(free_port)
url="http://127.0.0.1:$port"
printf '[host]\npackage_dirs = pk3\ndata_dir = data5\n[http]\nlisten = 127.0.0.1:%s\n' "$port" >"$tmp/host3.ini"
ph3() { "$PH_BIN" -c "$tmp/host3.ini" --log-level error "$@"; }
out=$(ph3 install "$tmp/src3/1.0.0/base") || fail "install base 1.0.0: $out"
grep -qF "installed base 1.0.0 in $tmp/pk3/base" <<<"$out" || fail "base 1.0.0: $out"
for v in 1.1.0 2.0.0; do
    out=$(ph3 install "$tmp/src3/$v/base") || fail "install base $v: $out"
    grep -qF "installed base $v in $tmp/pk3/base-$v" <<<"$out" || fail "base $v beside the others: $out"
done
[ "$(grep -h '^version' "$tmp"/pk3/base*/package.ini | sort | tr '\n' ' ')" = "version = 1.0.0 version = 1.1.0 version = 2.0.0 " ] ||
    fail "three versions side by side: $(ls "$tmp/pk3")"
for r in left right; do out=$(ph3 install "$tmp/src3/$r") || fail "install $r: $out"; done
out=$(ph3 list) || fail "list: $out"
python3 - "$out" <<'PY' || fail "list should show the three versions and the one that runs: $out"
import re, sys
rows = re.findall(r"^base +(\S+) .*\n +(.*)$", sys.argv[1], re.M)
assert rows == [("1.0.0", "installed beside other versions; no instance runs it"),
                ("1.1.0", "runs as instance 'base'"),
                ("2.0.0", "installed beside other versions; no instance runs it")], rows
PY
start_host -c "$tmp/host3.ini" --log-level warn
wait_ready "$url"
pk=$(curl -sf "$url/_/packages") || fail "/_/packages: $pk"
grep -q '"instance":"base","package":"base","version":"1.1.0"[^}]*"state":"running"' <<<"$pk" ||
    fail "the host should run base 1.1.0 (^1.0 and >=1.1): $pk"
# remove: NAME with several versions asks which; the running one is refused naming its instance
set +e; out=$(ph3 remove base 2>&1); rc=$?; set -e
[ $rc = 1 ] && grep -qF "plughost: remove: package 'base' is installed in 3 versions: 1.0.0, 1.1.0 (instance 'base' runs it), 2.0.0; say which one to remove: \`plughost remove base@VERSION\`" <<<"$out" ||
    fail "remove base with three versions: $rc $out"
set +e; out=$(ph3 remove base@1.1.0 2>&1); rc=$?; set -e
[ $rc = 1 ] && grep -qF "package 'base' 1.1.0 runs as instance 'base' and is not removed while it runs; remove the other versions first" <<<"$out" ||
    fail "removing the running version: $rc $out"
[ -d "$tmp/pk3/base-1.1.0" ] || fail "the running version was deleted"
set +e; out=$(ph3 remove base@1.x 2>&1); rc=$?; set -e
[ $rc = 1 ] && grep -qF "plughost: remove: 'base@1.x': '1.x' is no version (invalid version '1.x': minor version 'x' is not a number); write NAME@VERSION, e.g. base@1.0.0" <<<"$out" ||
    fail "remove base@1.x: $rc $out"
out=$(ph3 remove base@2.0.0 2>&1) || fail "remove base@2.0.0: $out"
grep -qF "removed package base 2.0.0 ($tmp/pk3/base-2.0.0)" <<<"$out" || fail "remove base@2.0.0: $out"
[ ! -e "$tmp/pk3/base-2.0.0" ] && [ -d "$tmp/pk3/base" ] || fail "remove base@2.0.0 removed the wrong one: $(ls "$tmp/pk3")"
grep -q '"instance":"base","package":"base","version":"1.1.0"[^}]*"state":"running"' <<<"$(curl -sf "$url/_/packages")" ||
    fail "base 1.1.0 should still run: $(curl -s "$url/_/packages")"
stop_host
out=$(ph3 install "$tmp/src3/2.0.0/base") || fail "install base 2.0.0 again: $out"
grep -qF "  note: base 2.0.0 goes beside the installed versions, but no instance runs it: package 'base': 1.1.0 chosen; not 2.0.0: outside ^1.0 of left 1.0.0" <<<"$out" ||
    fail "installing a version no instance runs should say so: $out"
# a pin in host.ini selects 1.0.0 (and right, >=1.1, fails naming the pin)
cp "$tmp/host3.ini" "$tmp/host3.bak"
printf '\n[instance base]\nversion = 1.0.0\n' >>"$tmp/host3.ini"
out=$(ph3 check 2>&1) && fail "right cannot run with base pinned to 1.0.0: $out"
grep -Eq '^ +[0-9]+\. base +base 1\.0\.0 .*\[ok\]' <<<"$out" || fail "the pin should select 1.0.0: $out"
grep -qF "package 'right' 1.0.0 requires base >=1.1 but base 1.0.0 is the version chosen (installed: 2.0.0, 1.1.0 and 1.0.0; pinned to 1.0.0 in $tmp/host3.ini:" <<<"$out" ||
    fail "right's failure should name the pin: $out"
cp "$tmp/host3.bak" "$tmp/host3.ini"
# a requirer of ^2 added: every requirer with the versions it accepts
cp -r "$tmp/src3/top" "$tmp/pk3/top"
out=$(ph3 check 2>&1) && fail "three requirers no version satisfies: $out"
grep -qF "package 'base' (installed: 2.0.0, 1.1.0 and 1.0.0) is required by left 1.0.0 (^1.0 accepts 1.1.0, 1.0.0), right 1.0.0 (>=1.1 accepts 2.0.0, 1.1.0) and top 1.0.0 (^2 accepts 2.0.0); no version satisfies all of them: change one of the ranges" <<<"$out" ||
    fail "the message naming the three requirers: $out"

# ---- an upgrade the running host refuses leaves the package directory as it was ----
# The CLI's host.ini names another data directory than the host's (a copy
# edited by hand), so its rehearsal cannot see the host's database: the
# host runs the broken upgrade script, refuses, and install undoes the copy.
mkdir -p "$tmp/pk4"
cp -r "$PH_FIXTURES/mig_shop_100/shop" "$tmp/pk4/shop"
port=$(free_port)
url="http://127.0.0.1:$port"
for d in data6 cli-data; do
    printf '[host]\npackage_dirs = pk4\ndata_dir = %s\n[http]\nlisten = 127.0.0.1:%s\n[auth]\ntoken = 0123456789abcdef0123456789abcdef\n' \
        "$d" "$port" >"$tmp/$d.ini"
done
start_host -c "$tmp/data6.ini" --log-level warn
wait_ready "$url"
set +e; out=$("$PH_BIN" -c "$tmp/cli-data.ini" --log-level error install --url "$url" \
    "$PH_FIXTURES/mig_shop_110_broken/shop" 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "an upgrade the host refuses should fail the install: $rc $out"
grep -qF "plughost install: the running host refused the change: migration: " <<<"$out" &&
    grep -qF "upgrade-1.0.0-1.1.0.sql" <<<"$out" &&
    grep -qF "plughost install: shop 1.1.0 was not installed; the package directory is as it was" <<<"$out" ||
    fail "the refusal and the undo should be said: $out"
[ "$(ls -A "$tmp/pk4")" = shop ] && grep -q '^version = 1.0.0$' "$tmp/pk4/shop/package.ini" ||
    fail "the package directory changed: $(ls -A "$tmp/pk4")"
stop_host
start_host -c "$tmp/data6.ini" --log-level warn # the next start runs what ran: 1.0.0
wait_ready "$url"
grep -q '"instance":"shop","package":"shop","version":"1.0.0"[^}]*"state":"running"' <<<"$(curl -sf "$url/_/packages")" ||
    fail "after a restart shop 1.0.0 should run: $(curl -s "$url/_/packages")"
stop_host
echo "ok: a refused upgrade leaves the package directory as it was; base installed in three versions side by side by the CLI, 1.1.0 runs, remove NAME@VERSION; shop 1.1.0 of three chosen, pinned to 1.0.0 by host.ini; an optional dependency out of range is a note; a capability's provider"
