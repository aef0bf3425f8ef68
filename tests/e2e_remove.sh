#!/usr/bin/env bash
# plughost remove: uninstall keeps every row (reinstall finds them); --purge
# deletes only after writing a backup; a required package cannot be removed
# from under its dependent; a running host unloads the package first.
set -euo pipefail
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
mkdir -p "$tmp/pk"
install_pkg() { cp -r "$PH_EXAMPLES/$1" "$tmp/pk/"; }
for p in notes hello greeter; do install_pkg $p; done
ph() { "$PH_BIN" --packages "$tmp/pk" --data-dir "$tmp/data" --log-level error "$@"; }

for i in $(seq 1 25); do ph call --local notes.note.new title="note $i" >/dev/null; done
[ "$(ph call --local notes.note.count)" = 25 ] || fail "25 notes expected"

# a package others require is refused, naming the dependent
set +e; out=$(ph remove hello 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "remove hello should fail, got $rc"
grep -q "package 'greeter' requires 'hello'; remove 'greeter' first" <<<"$out" || fail "$out"
[ -d "$tmp/pk/hello" ] || fail "hello must still be installed"

# remove keeps the data; reinstall finds every row
out=$(ph remove notes)
grep -q "removed package notes" <<<"$out" || fail "$out"
grep -q "data kept in $tmp/data/notes/notes.db" <<<"$out" || fail "$out"
[ ! -e "$tmp/pk/notes" ] || fail "package directory still there"
install_pkg notes
[ "$(ph call --local notes.note.count)" = 25 ] || fail "rows lost by remove/reinstall"

# a running host unloads the package before its files go
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$PH_BIN" --packages "$tmp/pk" --data-dir "$tmp/data" --log-level info run --listen "127.0.0.1:$port" >"$tmp/run.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do curl -sf -o /dev/null "http://127.0.0.1:$port/_/health?ready" && break; sleep 0.1; done
[ "$(ph call --url "http://127.0.0.1:$port" notes.note.count)" = 25 ] || fail "running host lost rows"
out=$(ph remove --listen "127.0.0.1:$port" notes)  # the admin token goes only to the configured host
grep -q "unloaded notes" <<<"$out" || fail "$out"
set +e; out=$(ph call --url "http://127.0.0.1:$port" notes.note.count 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "call after unload should fail: $out"
kill "$pid"; wait "$pid" || true; pid=
grep -q "notes disabled (data kept)" "$tmp/run.log" || fail "no unload in log"
install_pkg notes
[ "$(ph call --local notes.note.count)" = 25 ] || fail "rows lost after unload"

# --purge writes the backup first, then deletes the data
out=$(ph remove --purge notes)
backup=$(sed -n 's/.*a backup was written first: //p' <<<"$out")
[ -f "$backup" ] || fail "no backup file: $out"
[ "$(sqlite3 "$backup" 'select count(*) from note')" = 25 ] || fail "backup lacks rows"
[ "$(sqlite3 "$backup" 'pragma integrity_check')" = ok ] || fail "backup not intact"
[ ! -e "$tmp/data/notes/notes.db" ] || fail "purge left the database"
install_pkg notes
[ "$(ph call --local notes.note.count)" = 0 ] || fail "purged data came back"
# never more than the package: not a package directory itself, not a link's target
mkdir -p "$tmp/odd/pk" "$tmp/odd/src"
cp -r "$PH_EXAMPLES/hello" "$tmp/odd/src/linked"
sed -i 's/^name = hello/name = linked/' "$tmp/odd/src/linked/package.ini"
ln -s "$tmp/odd/src/linked" "$tmp/odd/pk/linked"
cp "$PH_EXAMPLES/calc/package.ini" "$tmp/odd/pk/package.ini"
sed -i 's/^name = calc/name = top/' "$tmp/odd/pk/package.ini"
echo "int main(void) { return 0; }" >"$tmp/odd/src/main.c"
odd() { "$PH_BIN" --packages "$tmp/odd/pk" --data-dir "$tmp/odd/data" --log-level error "$@"; }
set +e; out=$(odd remove top 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "removing a package directory itself should fail: $out"
grep -q "package 'top' is not a directory of its own inside a package directory" <<<"$out" || fail "$out"
[ -f "$tmp/odd/pk/package.ini" ] || fail "the package directory was touched"
odd remove linked >/dev/null
[ ! -e "$tmp/odd/pk/linked" ] || fail "the link is still there"
[ -f "$tmp/odd/src/linked/package.ini" ] && [ -f "$tmp/odd/src/main.c" ] || fail "the link's target was deleted"
set +e; out=$(odd remove --purge ../x 2>&1); rc=$?; set -e
[ $rc = 2 ] || fail "a path as a name should be refused: $out"
grep -q "invalid package name '../x'" <<<"$out" || fail "$out"
if grep -E "ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error" "$tmp/run.log" >/dev/null; then
  fail "the server reported a sanitizer error: $(grep -m1 -E 'Sanitizer|runtime error' "$tmp/run.log")"
fi
echo "1 passed, 0 failed"
