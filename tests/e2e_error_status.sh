#!/usr/bin/env bash
# HTTP statuses say whose mistake an error is (RFC 9110): a validate hook's
# refusal is 422, a package chooses its errors' status (ph_error_status) or
# gets the one its word implies ("not_found" 404), its own faults are 500;
# /_/metrics counts 4xx and 5xx apart; the CLI reads the error back by its
# word (429 is rate_limited, not a package error) and exits 75 (EX_TEMPFAIL)
# when the host asks to retry.
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
mkdir -p "$tmp/pk"
cp -r "$PH_EXAMPLES/notes" "$tmp/pk/"
build_pkg "$tmp/pk" statuses contract/statuses.c
port=$(free_port)
u="http://127.0.0.1:$port"
printf '[host]\npackage_dirs = pk\ndata_dir = data\n[http]\nlisten = 127.0.0.1:%s\nrate_limit = 3\n' \
  "$port" >"$tmp/host.ini"
start_host -c "$tmp/host.ini"
wait_ready "$u"
expect() { # STATUS WORD METHOD PATH [BODY]
  local out code
  out=$(curl -s -w '\n%{http_code}' -X "$3" -H 'Content-Type: application/json' "$u$4" -d "${5:-{\}}")
  code=${out##*$'\n'}
  [ "$code" = "$1" ] && grep -qF "\"code\":\"$2\"" <<<"$out" || fail "$3 $4: want $1 $2, got $out"
}
expect 422 blank_title POST /notes/models/note '{"title":"   "}'
expect 422 blank_title POST /notes/actors/note/new '{"title":""}'
expect 409 name_taken POST /statuses/actors/shelf/taken
expect 404 not_found POST /statuses/actors/shelf/missing
expect 500 disk_on_fire POST /statuses/actors/shelf/broken
expect 500 odd POST /statuses/actors/shelf/odd
m=$(curl -s "$u/_/metrics")
grep -q '^plughost_call_client_errors_total{instance="notes",actor="note",method="new"} 2$' <<<"$m" ||
  fail "client errors of notes.note.new: $(grep 'method="new"' <<<"$m")"
grep -q '^plughost_call_errors_total{instance="notes",actor="note",method="new"} 0$' <<<"$m" ||
  fail "a refusal counted as a server error: $(grep 'method="new"' <<<"$m")"
grep -q '^plughost_call_errors_total{instance="statuses",actor="shelf",method="broken"} 1$' <<<"$m" ||
  fail "a package fault not counted as a server error"
echo "  422 for a validate refusal, chosen and implied statuses, 4xx/5xx counted apart"

# an [optional] dependency the running version does not meet is left out: not callable either
build_pkg "$tmp/opt" optcaller contract/optcaller.c
printf '[optional]\nstatuses = ^2\n' >>"$tmp/opt/optcaller/package.ini"
cp -r "$tmp/pk/statuses" "$tmp/opt/"
out=$("$PH_BIN" --packages "$tmp/opt" --data-dir "$tmp/optdata" --log-level error call --local \
  optcaller.opt.reach 2>&1) && fail "a left-out optional dependency was callable: $out"
grep -qF "package 'optcaller' may not call 'statuses.shelf.missing': its optional statuses ^2 does not accept the running statuses 1.0.0, so it runs without it ($tmp/opt/optcaller/package.ini:5)" <<<"$out" ||
  fail "optional left out: $out"
echo "  an optional dependency left out of range is not callable, and says why"

# the CLI reads an error back by its word; 429 and 503 exit 75 (retry later)
set +e
for _ in 1 2 3 4 5 6; do
  err=$("$PH_BIN" -c "$tmp/host.ini" call statuses.shelf.missing 2>&1 >/dev/null); rc=$?
  [ $rc = 75 ] && break
done
set -e
[ $rc = 75 ] || fail "the CLI never exited 75 on a rate limit (last $rc: $err)"
grep -qF "plughost: rate_limited: " <<<"$err" && grep -qF "(HTTP 429)" <<<"$err" || fail "429 through the CLI: $err"
sleep 1.2
set +e; err=$("$PH_BIN" -c "$tmp/host.ini" call statuses.shelf.taken 2>&1 >/dev/null); rc=$?; set -e
[ $rc = 1 ] && grep -qF "plughost: name_taken: that name is taken; pick another (HTTP 409)" <<<"$err" ||
  fail "409 through the CLI: $rc $err"
echo "  the CLI: rate_limited (429) exits 75, a package's 409 exits 1 with its word"
echo "1 passed, 0 failed"
