#!/usr/bin/env bash
# Log lines a package writes stay one line each, whatever they hold: text
# (RFC 3339 time with its offset, escaped control characters), json (one
# object per line with instance and build) and an unknown format refused.
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
build_pkg "$tmp/pk" logger contract/logger.c
ph() { "$PH_BIN" --packages "$tmp/pk" --data-dir "$tmp/data" "$@"; }
ph --log-format text call --local logger.log.say "text=two
lines" >/dev/null 2>"$tmp/text.log" || fail "text: $(cat "$tmp/text.log")"
line=$(grep -F '[logger] first' "$tmp/text.log") || fail "no start() line: $(cat "$tmp/text.log")"
[ "$(grep -c 'forged' "$tmp/text.log")" = 1 ] || fail "the embedded line became its own: $(cat "$tmp/text.log")"
grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}[+-][0-9]{2}:[0-9]{2} info  \[logger\] first\\n2026-01-01T00:00:00\.000\+00:00 error \[host\] forged\\x1b\[31m$' <<<"$line" ||
  fail "text line: $line"
grep -qF '[logger] said: two\nlines' "$tmp/text.log" || fail "method line: $(cat "$tmp/text.log")"
echo "  text: one escaped line per event, RFC 3339 time with offset"

ph --log-format json call --local logger.log.say "text=two
lines" >/dev/null 2>"$tmp/json.log" || fail "json: $(cat "$tmp/json.log")"
python3 - "$tmp/json.log" <<'PY' || fail "json lines: $(cat "$tmp/json.log")"
import json, re, sys
lines = open(sys.argv[1]).read().splitlines()
objs = [json.loads(l) for l in lines]  # every line is one object
first = [o for o in objs if o.get("instance") == "logger" and o["message"].startswith("first")]
assert len(first) == 1, first
assert first[0]["message"] == "first\n2026-01-01T00:00:00.000+00:00 error [host] forged\x1b[31m", first
assert re.fullmatch(r"[0-9a-f]{16}", first[0]["build"] or ""), first[0]
assert first[0]["level"] == "info"
assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", first[0]["time"])
said = [o for o in objs if o["message"] == "said: two\nlines"]
assert len(said) == 1 and said[0]["level"] == "warn", said
host = [o for o in objs if o["instance"] is None]
assert host and all(o["build"] is None for o in host)
print("  json: %d lines, each one object; package lines carry instance and build" % len(objs))
PY
set +e; out=$(ph --log-format xml list 2>&1); rc=$?; set -e
[ $rc = 2 ] && [ "$out" = "plughost list: --log-format 'xml': use text, json or journal; see plughost list --help" ] ||
  fail "an unknown format: $rc $out"
# journal without journald: one warning, then the lines on stderr as text (none lost)
if [ -S /run/systemd/journal/socket ]; then
  echo "  journald runs here: its absence is not tried"
else
  ph --log-format journal call --local logger.log.say text=hi >/dev/null 2>"$tmp/journal.log" ||
    fail "journal: $(cat "$tmp/journal.log")"
  [ "$(grep -c 'journald is not reachable' "$tmp/journal.log")" = 1 ] &&
    grep -qF '[logger] said: hi' "$tmp/journal.log" || fail "journal without journald: $(cat "$tmp/journal.log")"
  echo "  journal without journald: one warning, every line on stderr"
fi
echo "1 passed, 0 failed"
