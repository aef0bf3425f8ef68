#!/usr/bin/env bash
# Group commit under kill -9: 8 HTTP writers at once on one instance (their
# inserts share transactions and fsyncs, store.c ph_store_write), some of
# them refused inside the batch (a comment on a note that does not exist),
# and the host killed with SIGKILL mid-batch, several times. Afterwards the
# database passes integrity_check, every acknowledged (201) row is there
# with its content, and no refused row is. Bounded: 4 rounds of at most
# about a second of writing each.
set -euo pipefail
tmp=$(mktemp -d)
pid=
writers=()
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  for w in "${writers[@]}"; do kill "$w" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() {
  for _ in $(seq 1 500); do
    if curl -sf -o "$tmp/health" "http://127.0.0.1:$1/_/health?ready"; then
      # ready also when an instance failed to start: say so rather than find no database later
      grep -q '"notes":"running"' "$tmp/health" && return 0
      fail "notes is not running: $(cat "$tmp/health"); $(tail -n 5 "$tmp/run.log")"
    fi
    sleep 0.02
  done
  fail "host did not come up"
}
mkdir -p "$tmp/pk"
cp -r "$PH_EXAMPLES/notes" "$tmp/pk/"
db="$tmp/data/notes/notes.db"
refused_seen=0
for round in 1 2 3 4; do
  p=$(port)
  "$PH_BIN" --packages "$tmp/pk" --data-dir "$tmp/data" --log-level error run --listen "127.0.0.1:$p" \
    >>"$tmp/run.log" 2>&1 &
  pid=$!
  wait_up "$p"
  writers=()
  for w in 1 2 3 4 5 6 7 8; do
    (
      i=0
      while [ "$i" -lt 2000 ]; do
        i=$((i + 1))
        if [ $((i % 3)) = 0 ]; then # refused in its batch: the note it names does not exist
          code=$(curl -s -m 2 -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$p/notes/models/comment" \
                   -H 'Content-Type: application/json' -d "{\"note\":999999999,\"text\":\"refused r$round-$w-$i\"}" || true)
          [ "$code" = 000 ] || echo "$code" >>"$tmp/refused.$w"
          continue
        fi
        out=$(curl -s -m 2 -X POST "http://127.0.0.1:$p/notes/models/note" \
                -H 'Content-Type: application/json' -d "{\"title\":\"r$round-$w-$i\"}" -w ' %{http_code}' || true)
        if [ "${out##* }" = 201 ]; then
          id=$(sed -n 's/^{"id":\([0-9]*\),.*/\1/p' <<<"${out% *}")
          echo "$id r$round-$w-$i" >>"$tmp/acked.$w"
        fi
      done
    ) &
    writers+=($!)
  done
  # until this round has written and been refused a few times (bounded), then a moment more
  total() { cat "$tmp"/$1.* 2>/dev/null | wc -l || true; }
  a0=$(total acked) r0=$(total refused)
  for _ in $(seq 1 500); do
    [ $(($(total acked) - a0)) -ge 8 ] && [ $(($(total refused) - r0)) -ge 3 ] && break
    sleep 0.02
  done
  sleep "0.$((RANDOM % 4 + 1))"
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
  for w in "${writers[@]}"; do kill "$w" 2>/dev/null || true; wait "$w" 2>/dev/null || true; done
  writers=()
  [ "$(sqlite3 "$db" 'pragma integrity_check')" = ok ] || fail "integrity_check failed after round $round"
  cat "$tmp"/acked.* 2>/dev/null | sort >"$tmp/acked" || true
  # one query for all of them: the acknowledged rows that are missing or differ
  sqlite3 "$db" "select id || ' ' || title from note" | sort >"$tmp/present"
  missing=$(comm -23 "$tmp/acked" "$tmp/present" | head -3)
  [ -z "$missing" ] || fail "acknowledged rows lost after kill -9 (round $round): $missing"
  n=$(sqlite3 "$db" "select count(*) from comment where text like 'refused %'")
  [ "$n" = 0 ] || fail "$n refused comment(s) present after round $round"
done
acked=$(wc -l <"$tmp/acked")
refused=$(cat "$tmp"/refused.* 2>/dev/null | grep -vc '^2' || true)
bad=$(cat "$tmp"/refused.* 2>/dev/null | grep -c '^2' || true)
[ "$bad" = 0 ] || fail "$bad write(s) on a missing note were accepted"
[ "$acked" -ge 32 ] || fail "too few acknowledged writes ($acked) to mean anything"
[ "$refused" -ge 12 ] || fail "too few refused writes ($refused) to mean anything"
echo "group commit: $acked acknowledged rows from 8 writers across 4 kills, all present;" \
  "$refused refused writes, none present; integrity ok"
