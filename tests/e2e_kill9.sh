#!/usr/bin/env bash
# kill -9 of the real host, (1) in the middle of HTTP writes and (2) in the
# middle of a schema migration at start-up, at many points. Afterwards the
# database opens, passes integrity_check, has the old or the new schema
# (never a mix) and holds every acknowledged row. Bounded: a few rounds of
# at most a second or two each.
set -euo pipefail
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() {
  for _ in $(seq 1 500); do
    curl -sf -o /dev/null "http://127.0.0.1:$1/_/health?ready" && return 0
    sleep 0.02
  done
  fail "host did not come up"
}
check_db() { # check_db DB: opens, intact
  [ "$(sqlite3 "$1" 'pragma integrity_check')" = ok ] || fail "integrity_check failed on $1"
}

# ---- 1. writes ----
mkdir -p "$tmp/w/pk"
cp -r "$PH_EXAMPLES/notes" "$tmp/w/pk/"
: >"$tmp/acked"
for round in 1 2 3 4 5 6; do
  p=$(port)
  "$PH_BIN" --packages "$tmp/w/pk" --data-dir "$tmp/w/data" --log-level error run --listen "127.0.0.1:$p" \
    >>"$tmp/w/run.log" 2>&1 &
  pid=$!
  wait_up "$p"
  (
    i=0
    while :; do
      i=$((i + 1))
      out=$(curl -s -m 2 -X POST "http://127.0.0.1:$p/notes/models/note" \
              -H 'Content-Type: application/json' -d "{\"title\":\"r$round-$i\"}" -w ' %{http_code}' || true)
      code=${out##* }
      if [ "$code" = 201 ]; then
        id=$(sed -n 's/^{"id":\([0-9]*\),.*/\1/p' <<<"${out% *}")
        echo "$id r$round-$i" >>"$tmp/acked"
      fi
    done
  ) &
  writer=$!
  sleep "0.$((RANDOM % 6 + 2))"
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
  kill "$writer"; wait "$writer" 2>/dev/null || true
  db="$tmp/w/data/notes/notes.db"
  check_db "$db"
  while read -r id title; do
    got=$(sqlite3 "$db" "select title from note where id = $id")
    [ "$got" = "$title" ] || fail "acknowledged row $id ($title) lost after kill -9 (found '$got')"
  done <"$tmp/acked"
done
n=$(wc -l <"$tmp/acked")
[ "$n" -gt 20 ] || fail "too few acknowledged writes ($n) to mean anything"
echo "writes: $n acknowledged rows across 6 kills, all present, integrity ok"

# ---- 2. migration 1.0.0 -> 2.0.0 ----
v1="$PH_FIXTURES/model_notes_v1/notes"
old=0 new=0
for round in $(seq 1 12); do
  d="$tmp/m$round"
  mkdir -p "$d/pk"
  cp -r "$v1" "$d/pk/notes"
  for i in $(seq 1 40); do echo "{\"title\":\"n$i\",\"body\":\"b$i\"}"; done >"$d/rows"
  # 1.0.0 writes the rows
  "$PH_BIN" --packages "$d/pk" --data-dir "$d/data" --log-level error call --local \
    notes.note.new '{"title":"first","body":"x"}' >/dev/null
  sqlite3 "$d/data/notes/notes.db" \
    "with recursive c(i) as (select 2 union all select i+1 from c where i < 3000)
     insert into note(id, created, updated, title, body, pinned)
     select i, 0, 0, 'n' || i, 'b' || i, 0 from c"
  rm -rf "$d/pk/notes"
  cp -r "$PH_EXAMPLES/notes" "$d/pk/notes"
  "$PH_BIN" --packages "$d/pk" --data-dir "$d/data" --log-level error run --listen "127.0.0.1:$(port)" \
    >"$d/run.log" 2>&1 &
  pid=$!
  sleep "$(printf '0.%03d' $(( (round - 1) * 25 + RANDOM % 25 )))"  # spread from 0 to 300 ms
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; pid=
  db="$d/data/notes/notes.db"
  check_db "$db"
  cols=$(sqlite3 "$db" "select group_concat(name) from pragma_table_info('note')")
  version=$(sqlite3 "$db" "select value from _ph_meta where key = 'version'")
  rows=$(sqlite3 "$db" "select count(*) from note")
  [ "$rows" = 3000 ] || fail "round $round: $rows rows, expected 3000"
  case "$cols,$version" in
    *body*,1.0.0) old=$((old + 1)) ;;
    *content*,2.0.0) new=$((new + 1)) ;;
    *) fail "round $round: schema between versions: columns $cols, recorded version $version" ;;
  esac
done
echo "migration: 12 kills, $old left the old schema, $new the new one; rows and integrity intact"
echo "2 passed, 0 failed"
