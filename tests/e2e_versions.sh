#!/usr/bin/env bash
# Issue 13, acceptance 3, with the real binary and real builds: shop 1.0.0,
# 1.1.0 and 1.2.0 (tests/packages/mig_shop_*) installed side by side, a
# requirer accepting <1.2: the host runs 1.1.0 and `check` says why not the
# others; host.ini `version = 1.0.0` pins (rolls back to) 1.0.0.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
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
echo "ok: shop 1.1.0 of three chosen, pinned to 1.0.0 by host.ini"
