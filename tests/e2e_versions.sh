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
for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/_/health?ready" && break; sleep 0.1; done
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
sed -i 's/^probe-api = .*$/probe-api = ^2/' "$tmp/pk2/core_caller/package.ini"
out=$("$PH_BIN" --packages "$tmp/pk2" --data-dir "$tmp/data4" --log-level error check 2>&1) &&
    fail "no provider in range should fail: $out"
grep -qF "package 'core_caller' 1.0.0 requires probe-api ^2, a capability no running provider suits: core_good 1.0.0 provides probe-api 1.4.0 (outside ^2)" \
    <<<"$out" || fail "the message on a capability no provider suits: $out"
echo "ok: shop 1.1.0 of three chosen, pinned to 1.0.0 by host.ini; an optional dependency out of range is a note; a capability's provider"
