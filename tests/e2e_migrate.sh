#!/usr/bin/env bash
# Issue 8, the migration half, with the real binary and real .so packages
# (tests/packages/mig_*):
#   failure 1  a skipped release's script still runs (shop 1.0.0 -> 1.2.0
#              ends with price 300, like 1.0.0 -> 1.1.0 -> 1.2.0)
#   failure 2  the advice names the missing link (upgrade-1.1.0-1.2.0.sql)
#   failure 6  a package without models goes back from 2.0.0 to 1.2.3
#   failure 12 / acceptance 6  `check` prints every problem it counts, the
#              chain per instance and its dry run on a scratch copy; a broken
#              script is reported with its line; the database file is
#              byte-identical afterwards; a package whose code crashes or
#              hangs when loaded is blamed by name and build, and check
#              survives it
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
mkdir -p "$tmp/pk"
# use FIXTURE: the package directory holds exactly this release of the package
use() {
    local staged name
    staged=$(dirname "$(ls "$PH_FIXTURES/$1"/*/package.ini)")
    name=$(basename "$staged")
    rm -rf "${tmp:?}/pk/$name"
    cp -r "$staged" "$tmp/pk/"
}
ph() { "$PH_BIN" --packages "$tmp/pk" --data-dir "$tmp/data" --log-level error "$@"; }
db=$tmp/data/shop/shop.db
q() { sqlite3 "$db" "$1"; }
new_items() {
    ph call --local shop.item.new name=pen price=3 >/dev/null
    ph call --local shop.item.new name=ink price=7 >/dev/null
}

# ---- failure 1: every route ends with the same data ----
use mig_shop_100
new_items
use mig_shop_110
ph call --local shop.item.count >/dev/null
use mig_shop_120
ph call --local shop.item.count >/dev/null
[ "$(q "select group_concat(price) from item")" = "300,700" ] || fail "step by step: $(q 'select * from item')"
step=$(q "select name, price, note from item order by id")
rm -rf "$tmp/data"
use mig_shop_100
new_items
use mig_shop_120 # skips 1.1.0
out=$(ph call --local shop.item.get id=1)
grep -q '"price":300' <<<"$out" || fail "1.0.0 -> 1.2.0 skipped the 1.1.0 script: $out"
[ "$(q "select name, price, note from item order by id")" = "$step" ] ||
    fail "routes differ: $(q 'select * from item')"
[ "$(q "select from_version || '>' || to_version || ' ' || scripts from _ph_migrations order by id desc limit 1")" = \
    '1.0.0>1.2.0 ["upgrade-1.0.0-1.1.0.sql"]' ] || fail "scripts not recorded: $(q 'select * from _ph_migrations')"
[ "$(q "select count(*) from pragma_table_info('item') where name='note'")" = 1 ] || fail "note not added"

# ---- failure 2: the missing link ----
rm -rf "$tmp/data"
use mig_shop_100
new_items
use mig_shop_120_rename
set +e; out=$(ph call --local shop.item.count 2>&1); rc=$?; set -e
[ $rc != 0 ] || fail "the rename without a script was accepted"
grep -qF "add $tmp/pk/shop/sql/upgrade-1.1.0-1.2.0.sql that makes this change" <<<"$out" ||
    fail "the advice does not name the missing link: $out"
grep -qF "upgrade-1.0.0-1.2.0.sql" <<<"$out" && fail "the advice names the wrong script: $out"
grep -qF "the scripts before it ran: upgrade-1.0.0-1.1.0.sql; the database was not changed" <<<"$out" ||
    fail "$out"
[ "$(q "select group_concat(price) from item")" = "3,7" ] || fail "a refused upgrade changed data"
# check shows the chain it would run (not "no upgrade scripts") and the dry run's verdict
set +e; out=$(ph check 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "check should fail, got $rc: $out"
grep -qF "shop: upgrade 1.0.0 -> 1.2.0 via upgrade-1.0.0-1.1.0.sql, automatic changes to 1.2.0 (verified backup first)" <<<"$out" ||
    fail "check does not show the chain: $out"
grep -q "no upgrade scripts" <<<"$out" && fail "check says no upgrade scripts: $out"
grep -qF "dry run on a copy of the database: FAILED: instance 'shop' (shop 1.0.0 -> 1.2.0): new field 'title'" <<<"$out" ||
    fail "check has no dry run: $out"
grep -qF "problems (1):" <<<"$out" || fail "$out"
grep -qF "  - instance 'shop': the migration would fail: " <<<"$out" || fail "problem not listed: $out"

# ---- failure 12 / acceptance 6: check rehearses on a copy and prints what it counts ----
use mig_shop_120
sum=$(sha256sum "$db" | cut -d' ' -f1)
(cd "$tmp/data" && find . | sort) >"$tmp/files.before"
out=$(ph check 2>&1) || fail "check of a good upgrade failed: $out"
grep -qE "shop +shop 1.2.0  \[ok] build [0-9a-f]{16}" <<<"$out" || fail "no opened build: $out"
grep -qF "shop: upgrade 1.0.0 -> 1.2.0 via upgrade-1.0.0-1.1.0.sql, automatic changes to 1.2.0" <<<"$out" || fail "$out"
grep -qF "dry run on a copy of the database: ok (ran upgrade-1.0.0-1.1.0.sql; added field 'note' to model 'item')" <<<"$out" ||
    fail "no dry run result: $out"
grep -q "no problems" <<<"$out" || fail "$out"
[ "$(sha256sum "$db" | cut -d' ' -f1)" = "$sum" ] || fail "check changed the database file"
(cd "$tmp/data" && find . | sort) | cmp -s - "$tmp/files.before" ||
    fail "check left or removed files in the data directory: $(cd "$tmp/data" && find . | sort)"
[ "$(q "select value from _ph_meta where key='version'")" = 1.0.0 ] || fail "check upgraded the database"

# a broken script: check names it and its line, the data stays byte-identical
use mig_shop_110_broken
set +e; out=$(ph check 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "check should fail on a broken script: $out"
grep -qF "upgrade-1.0.0-1.1.0.sql failed at line 3: no such column: prize" <<<"$out" ||
    fail "check does not report the script's line: $out"
n=$(sed -n 's/^problems (\([0-9]*\)):$/\1/p' <<<"$out")
listed=$(grep -c '^  - ' <<<"$out")
[ "$n" = "$listed" ] || fail "check counts $n problems but prints $listed: $out"
[ "$(sha256sum "$db" | cut -d' ' -f1)" = "$sum" ] || fail "check changed the database file"

# a package whose code crashes or hangs when loaded: blamed, check survives
use mig_shop_120
use mig_scan_crash
use mig_scan_hang
set +e; out=$(PLUGHOST_SCAN_TIMEOUT_MS=4000 ph check 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "check should fail: $out"
grep -qE "  - instance 'scan_crash': the scanner crashed with SIGSEGV while reading package 'scan_crash' 1.0.0 \(.*/scan_crash.so, build [0-9a-f]{16}\)" <<<"$out" ||
    fail "crash not blamed on the package: $out"
grep -qE "  - instance 'scan_hang': the scanner did not answer within 4000 ms \(killed\) while reading package 'scan_hang' 1.0.0" <<<"$out" ||
    fail "hang not blamed on the package: $out"
grep -qE "scan_crash +scan_crash 1.0.0  \[failed] build" <<<"$out" || fail "a crashing .so shown as ok: $out"
grep -qF "dry run on a copy of the database: ok" <<<"$out" || fail "the good package was not checked: $out"
grep -qF "problems (2):" <<<"$out" || fail "$out"
# its dependents are not shown as loadable either
rm -rf "$tmp/pk/scan_hang"
cp "$tmp/pk/shop/package.ini" "$tmp/shop.ini"
printf '[requires]\nscan_crash = *\n' >>"$tmp/pk/shop/package.ini"
set +e; out=$(ph check 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "check should fail: $out"
grep -qE "shop +shop 1.2.0  needs scan_crash  \[skipped\]" <<<"$out" || fail "dependent not skipped: $out"
grep -qF "  - instance 'shop': skipped: depends on 'scan_crash', which cannot be loaded" <<<"$out" || fail "$out"
grep -qF "dry run" <<<"$out" && fail "a skipped instance was rehearsed: $out"
cp "$tmp/shop.ini" "$tmp/pk/shop/package.ini"
rm -rf "$tmp/pk/scan_crash"
# a .so that does not match its manifest is reported, not "ok"
sed -i 's/^version = 1.2.0/version = 1.2.1/' "$tmp/pk/shop/package.ini"
set +e; out=$(ph check 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "check should fail on a mismatching .so: $out"
grep -qE "shop +shop 1.2.1  \[failed" <<<"$out" || fail "an unopened .so shown as ok: $out"
grep -qF "problems (1):" <<<"$out" || fail "$out"
rm -rf "$tmp/pk/shop"

# ---- failure 6: a package without models goes back ----
use mig_plain_200
[ "$(ph call --local plain.about.version)" = '"2.0.0"' ] || fail "plain 2.0.0 did not run"
use mig_plain_123
out=$(ph check 2>&1) || fail "check refuses the downgrade: $out"
grep -qF "plain: downgrade 2.0.0 -> 1.2.3" <<<"$out" || fail "$out"
out=$(ph call --local plain.about.version 2>&1) || fail "downgrade refused: $out"
[ "$out" = '"1.2.3"' ] || fail "plain 1.2.3 did not run: $out"
pdb=$tmp/data/plain/plain.db
[ "$(sqlite3 "$pdb" "select from_version || '>' || to_version || ' ' || scripts from _ph_migrations order by id desc limit 1")" = \
    '2.0.0>1.2.3 []' ] || fail "downgrade not recorded"
ls "$tmp/data/backups/plain/" | grep -q -- "-upgrade-2.0.0-to-1.2.3.db" || fail "no backup before the downgrade"
echo "ok: migrations (skipped release, missing link, check dry run, model-less downgrade)"
