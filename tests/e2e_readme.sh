#!/usr/bin/env bash
# The README's "Write your first package" really compiles and works: extract
# every block marked <!-- readme-example: FILE -->, build it out of tree
# against an installed plughost as the README says, and call it.
# Env (set by ctest): PH_SOURCE_DIR, PH_BUILD_DIR.
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
readme=$PH_SOURCE_DIR/README.md
pkg=$tmp/shout

# Writes each marked block to $pkg/FILE; prints the file names.
mkdir -p "$pkg"
awk -v dir="$pkg" '
    /^<!-- readme-example: [^ ]+ -->$/ { name = $3; want = 1; next }
    want && /^```/ { if (inside) { close(dir "/" name); inside = 0; want = 0; print name } else inside = 1; next }
    inside { print > (dir "/" name) }
' "$readme" >"$tmp/files"
for f in package.ini shout.c CMakeLists.txt; do
    grep -qx "$f" "$tmp/files" || fail "README has no block marked <!-- readme-example: $f -->"
    [ -s "$pkg/$f" ] || fail "README block $f is empty"
done

prefix=$tmp/prefix
cmake --install "$PH_BUILD_DIR" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; fail "cmake --install failed"; }
cmake -S "$pkg" -B "$pkg/build" -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/cmake.log" 2>&1 ||
    { cat "$tmp/cmake.log"; fail "configuring the README package failed"; }
cmake --build "$pkg/build" >"$tmp/build.log" 2>&1 ||
    { cat "$tmp/build.log"; fail "building the README package failed"; }

cd "$tmp"
call() { "$prefix/bin/plughost" call --local --packages shout/build/packages "$@" 2>"$tmp/err"; }
out=$(call shout.loud.shout text=hello) || { cat "$tmp/err"; fail "README package call failed"; }
[ "$out" = '"HELLO!"' ] || fail "shout.loud.shout printed '$out', expected '\"HELLO!\"'"
grep -q "\[shout\] ready to shout with suffix '!'" "$tmp/err" || { cat "$tmp/err"; fail "start did not log"; }
out=$(call shout.loud.count 'words=["a", "b", "c"]') || { cat "$tmp/err"; fail "count failed"; }
[ "$out" = 3 ] || fail "shout.loud.count printed '$out', expected 3"
if call shout.loud.count 'words={}' >/dev/null; then fail "count of an object must fail"; fi
grep -q "plughost: not_an_array: words must be an array" "$tmp/err" || { cat "$tmp/err"; fail "wrong error text"; }
echo "ok: the README example builds, loads and answers"
