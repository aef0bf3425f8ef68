#!/usr/bin/env bash
# Issue 14's open findings 1, 2 and 4 against the real host: a lifecycle
# callback that never returns is given up after [limits] stop_timeout like
# stop() (the host names package, build and callback, keeps the build
# mapped, counts the callback as failed with that callback's documented
# effect, and management and shutdown go on): after_instantiate of an
# instance the page creates (the page answers the failure and rolls host.ini
# back), after_upgrade (the upgrade is rolled back, stop() is not run under
# it) and before_uninstall (the removal is refused, 409, cb keeps serving);
# shutdown ends without running stop() under it; and /_/packages gives the wall-clock time of an instance's last reload.
# tests/apm/cb.c hangs in the callbacks its parameter `hang` names.
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
E2E_LOG_LINES=${E2E_LOG_LINES:-30}
rec="$tmp/rec"
mkdir -p "$tmp/pk/cb" "$rec"
cp -r "$PH_EXAMPLES/pkgmgr" "$tmp/pk/pkgmgr"
cbso() { # VERSION-DEFINE: (re)builds cb 1.0.0
  cc -std=c11 -shared -fPIC -fvisibility=hidden -I"$PH_SOURCE_DIR/sdk/include" \
    -DPH_PACKAGE_NAME='"cb"' -DPH_PACKAGE_VERSION='"1.0.0"' "$@" \
    -o "$tmp/cb.so.new" "$PH_SOURCE_DIR/tests/apm/cb.c" || fail "cc cb"
  mv "$tmp/cb.so.new" "$tmp/pk/cb/cb.so"
}
cat >"$tmp/pk/cb/package.ini" <<INI
[package]
name = cb
version = 1.0.0
[parameters]
dir = $rec
hang = before_uninstall
INI
cbso
port=$(free_port)
url="http://127.0.0.1:$port"
# stop()'s limit, which the callbacks share: 3 s, generous for a sanitizer build
printf '[limits]\nstop_timeout = 3\n[host]\npackage_dirs = pk\ndata_dir = data\nreload = false\n[http]\nlisten = 127.0.0.1:%s\n' \
  "$port" >"$tmp/host.ini"
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}'; }
post() { curl -s -m 60 -X POST -H 'Content-Type: application/json' "$@"; }
calls() { cat "$rec/calls.log" 2>/dev/null; }
start_host -c "$tmp/host.ini" --log-level info
wait_ready "$url" 600
tok=$(cat "$tmp/data/admin.token")
admin() { post -H "Authorization: Bearer $tok" "$@"; }
pm="$url/pkgmgr/actors/packages"
answered() { # BODY URL ANSWER-REGEX INSTANCE CALLBACK: the answer (and its time t), the log line
  local t0
  t0=$(date +%s.%N)
  out=$(admin -w ' %{http_code}' -d "$1" "$2" | tr -d '\n')
  t=$(since "$t0")
  grep -q "$3" <<<"$out" || fail "$5 hangs: $2 answered: $out"
  grep -q "error \[$4\] package 'cb' build [0-9a-f]\{16\}: $5() did not return within 3 s" "$tmp/run.log" ||
    fail "no log line of the hanging $5"
}

# --- finding 4: the time of the last reload, RFC 3339 (UTC), in /_/packages ---
grep -q '"last_reload"' <<<"$(curl -s "$url/_/packages")" && fail "a last reload before any: $(curl -s "$url/_/packages")"
before=$(date -u +%s)
cbso -O1 # another build of the same version
out=$(admin -d '{}' "$url/_/reload/cb")
grep -q '"result":"reloaded"' <<<"$out" || fail "reload cb: $out"
out=$(curl -s "$url/_/packages")
python3 - "$out" "$before" <<'PY' || fail "last_reload: $out"
import datetime, json, sys
d = json.loads(sys.argv[1])
cb = [i for i in d["instances"] if i["instance"] == "cb"][0]
t = datetime.datetime.strptime(cb["last_reload"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
now = datetime.datetime.now(datetime.timezone.utc).timestamp()
assert int(sys.argv[2]) - 1 <= t.timestamp() <= now + 1, (cb["last_reload"], sys.argv[2], now)
assert cb["reloads"] == 1, cb
PY
# the page shows it (app.js renders the field)
js=$(curl -sf "$url/pkgmgr/app.js") || fail "no app.js"
grep -qF '"last " + it.last_reload' <<<"$js" || fail "the page does not show last_reload"
echo "  /_/packages: last_reload $(grep -o '"last_reload":"[^"]*"' <<<"$out" | head -1)"

# --- finding 1 and 2: a new instance whose after_instantiate never returns ---
cp "$tmp/host.ini" "$tmp/host.ini.before"
answered '{"instance":"cb2","package":"cb","mount":"/cb2","parameters":{"hang":"after_instantiate"}}' "$pm/instance_new" \
  "instance 'cb2' did not start (failed): package 'cb' build [0-9a-f]\{16\}: after_instantiate() did not return within 3 s; its code stays mapped and it counts as failed; make after_instantiate() return (signal and join your threads, never wait without a time limit), or raise \[limits\] stop_timeout; host.ini is rolled back (the section is removed) and the host applies that now.* 500$" \
  cb2 after_instantiate
cmp -s "$tmp/host.ini" "$tmp/host.ini.before" || fail "host.ini not rolled back: $(diff "$tmp/host.ini.before" "$tmp/host.ini")"
grep -q "^cb2 1.0.0 after_instantiate$" <<<"$(calls)" || fail "after_instantiate did not run: $(calls)"
grep -q "^cb2 1.0.0 stop$" <<<"$(calls)" && fail "stop() ran under the hanging after_instantiate: $(calls)"
echo "  instance_new: after_instantiate hangs: answered 500 after $t s, host.ini rolled back"
# management goes on: the rollback is applied, cb still serves
for _ in $(seq 1 600); do
  grep -q '"instance":"cb2"' <<<"$(curl -s "$url/_/packages")" || break
  sleep 0.1
done
grep -q '"instance":"cb2"' <<<"$(curl -s "$url/_/packages")" && fail "cb2 is still listed after the rollback"
[ "$("$PH_BIN" call --url "$url" cb.cb.version)" = '"1.0.0"' ] || fail "cb does not serve"

# --- finding 1: an after_upgrade that never returns rolls the upgrade back (its failure's effect) ---
cp -r "$tmp/pk/cb" "$tmp/cb1"
sed -i 's/^version = 1.0.0/version = 2.0.0/; s/^hang = .*/hang = after_upgrade/' "$tmp/pk/cb/package.ini"
cbso -UPH_PACKAGE_VERSION -DPH_PACKAGE_VERSION='"2.0.0"'
: >"$rec/calls.log"
answered '{}' "$url/_/reload/cb" \
  "new build of 'cb' ([0-9a-f]\{16\}): package 'cb' build [0-9a-f]\{16\}: after_upgrade() did not return within 3 s; its code stays mapped and it counts as failed; .*; the upgrade 1.0.0 -> 2.0.0 is rolled back and 1.0.0 serves again" \
  cb after_upgrade
grep -q "^cb 2.0.0 after_upgrade 1.0.0->2.0.0$" <<<"$(calls)" || fail "after_upgrade did not run: $(calls)"
grep -q "^cb 2.0.0 stop$" <<<"$(calls)" && fail "stop() ran under the hanging after_upgrade: $(calls)"
[ "$("$PH_BIN" call --url "$url" cb.cb.version)" = '"1.0.0"' ] || fail "1.0.0 does not serve after the rollback"
rm -rf "$tmp/pk/cb" && mv "$tmp/cb1" "$tmp/pk/cb"
echo "  reload to 2.0.0: after_upgrade hangs: rolled back after $t s, 1.0.0 serves"

# --- finding 1: a before_uninstall that never returns refuses the removal (its failure's effect) ---
: >"$rec/calls.log"
answered '{}' "$url/_/remove/cb" \
  "package 'cb' refused its removal (instance 'cb': package 'cb' build [0-9a-f]\{16\}: before_uninstall() did not return within 3 s; its code stays mapped and it counts as failed; make before_uninstall() return .*); nothing was changed.* 409$" \
  cb before_uninstall
[ -d "$tmp/pk/cb" ] || fail "the package was removed"
[ "$("$PH_BIN" call --url "$url" cb.cb.version)" = '"1.0.0"' ] || fail "cb does not serve after the refused removal"
echo "  remove: before_uninstall hangs: refused (409) after $t s, cb serves"

# --- shutdown goes on with a callback still running in cb's build ---
t0=$(date +%s.%N)
kill "$pid"
for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "the host did not end within 60 s of SIGTERM"
set +e; wait "$pid"; set -e
pid=
grep -q "stop() not run: before_uninstall() is still running" "$tmp/run.log" ||
  fail "stop() of cb was not skipped under its hanging before_uninstall"
echo "  shutdown: ended after $(since "$t0") s; stop() not run under the hanging callback"
echo "1 passed, 0 failed"
