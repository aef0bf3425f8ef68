#!/usr/bin/env bash
# Acceptance 6: a package built out of tree against the installed SDK loads
# and serves calls. Installs the build into a temporary prefix, then builds
#   - a package with find_package(plughost) + plughost_add_package(), and
#   - a package with plain cc + `pkg-config --cflags plughost`,
# and calls both with the installed plughost binary.
# Env (set by ctest): PH_BUILD_DIR.
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$PH_BUILD_DIR" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; fail "cmake --install failed"; }

bin=$prefix/bin/plughost
[ -x "$bin" ] || fail "no plughost binary in $prefix/bin"
[ -f "$prefix/include/plughost/sdk.h" ] || fail "sdk.h not installed"
config=$(find "$prefix" -name plughostConfig.cmake | head -1)
[ -n "$config" ] || fail "plughostConfig.cmake not installed"
pc=$(find "$prefix" -name plughost.pc | head -1)
[ -n "$pc" ] || fail "plughost.pc not installed"

# ---- 1. CMake: find_package(plughost) ----
src=$tmp/oot
mkdir -p "$src"
cat >"$src/package.ini" <<'INI'
[package]
name = oot
version = 0.3.1
description = Built out of tree against the installed SDK

[parameters]
suffix = !
INI
cat >"$src/oot.c" <<'C'
#include <plughost/sdk.h>

static char *shout(ph_ctx *ctx, const char *text)
{
    const char *suffix = ph_param(ctx, "suffix");
    size_t n = 0, m = 0;
    while (text[n]) n++;
    while (suffix[m]) m++;
    char *out = ph_alloc(ctx, n + m + 1);
    for (size_t i = 0; i < n; i++)
        out[i] = (text[i] >= 'a' && text[i] <= 'z') ? (char)(text[i] - 32) : text[i];
    for (size_t i = 0; i <= m; i++)
        out[n + i] = suffix[i];
    return out;
}

static int64_t twice(ph_ctx *ctx, int64_t v) { (void)ctx; return 2 * v; }

static const ph_method methods[] = {
    PH_METHOD(shout, PH_STR, PH_ARG("text", PH_STR)),
    PH_METHOD(twice, PH_I64, PH_ARG("v", PH_I64)),
};
PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("loud", methods)));
C
cat >"$src/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(oot C)
find_package(plughost 0.1 REQUIRED)
plughost_add_package(oot SOURCES oot.c)
CM
# Only the temporary prefix may provide plughost (no source tree, no build tree).
cmake -S "$src" -B "$src/build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >"$tmp/cmake.log" 2>&1 ||
    { cat "$tmp/cmake.log"; fail "configuring the out-of-tree package failed"; }
cmake --build "$src/build" >"$tmp/build.log" 2>&1 ||
    { cat "$tmp/build.log"; fail "building the out-of-tree package failed"; }
staged=$src/build/packages/oot
[ -f "$staged/oot.so" ] && [ -f "$staged/package.ini" ] ||
    fail "plughost_add_package did not stage oot.so + package.ini in $staged"
grep -q "$PH_SOURCE_DIR" "$src/build/CMakeCache.txt" &&
    fail "the out-of-tree build refers to the source tree"

# Issue 8, failure 7: the stage holds exactly the source tree's files. A
# script removed from sql/ (or a page from www/) disappears from the staged
# package at the next build, so the host never offers a stale script.
mkdir -p "$src/sql" "$src/www"
echo "UPDATE x SET y = 1;" >"$src/sql/upgrade-0.3.0-0.3.1.sql"
echo "SELECT 1;" >"$src/sql/upgrade-0.3.1-0.4.0.sql"
echo "<p>hi</p>" >"$src/www/index.html"
cmake --build "$src/build" >"$tmp/build.log" 2>&1 ||
    { cat "$tmp/build.log"; fail "rebuilding with sql/ and www/ failed"; }
[ -f "$staged/sql/upgrade-0.3.1-0.4.0.sql" ] && [ -f "$staged/www/index.html" ] ||
    fail "plughost_add_package did not stage sql/ and www/: $(find "$staged" | sort | tr '\n' ' ')"
rm "$src/sql/upgrade-0.3.1-0.4.0.sql" "$src/www/index.html"
echo "UPDATE x SET y = 2;" >"$src/sql/upgrade-0.3.0-0.3.1.sql"
cmake --build "$src/build" >"$tmp/build.log" 2>&1 ||
    { cat "$tmp/build.log"; fail "rebuilding after removing sources failed"; }
[ ! -e "$staged/sql/upgrade-0.3.1-0.4.0.sql" ] ||
    fail "a script removed from the sources is still staged: $staged/sql/upgrade-0.3.1-0.4.0.sql"
[ ! -e "$staged/www/index.html" ] || fail "a page removed from the sources is still staged"
grep -q "y = 2" "$staged/sql/upgrade-0.3.0-0.3.1.sql" || fail "a changed script was not staged again"
rm -r "$src/sql" "$src/www"
cmake --build "$src/build" >"$tmp/build.log" 2>&1 ||
    { cat "$tmp/build.log"; fail "rebuilding after removing sql/ failed"; }
[ ! -e "$staged/sql" ] || fail "sql/ removed from the sources is still staged: $(ls "$staged/sql")"

# ---- 2. pkg-config + plain cc ----
pkgsrc=$tmp/pcpkg
mkdir -p "$pkgsrc"
cat >"$pkgsrc/package.ini" <<'INI'
[package]
name = pcpkg
version = 2.0.0
INI
cat >"$pkgsrc/pcpkg.c" <<'C'
#include <plughost/sdk.h>
static double half(ph_ctx *ctx, double v) { (void)ctx; return v / 2; }
static const ph_method methods[] = { PH_METHOD(half, PH_F64, PH_ARG("v", PH_F64)) };
PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("num", methods)));
C
cflags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags plughost) ||
    fail "pkg-config --cflags plughost failed"
pcflags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --variable=package_cflags plughost)
[ "$pcflags" = "-fPIC -fvisibility=hidden -Werror=old-style-definition" ] || fail "package_cflags is '$pcflags'"
incdir=
for flag in $cflags; do
    case "$flag" in -I*) incdir=${flag#-I} ;; esac
done
[ -n "$incdir" ] && [ "$(cd "$incdir" 2>/dev/null && pwd -P)" = "$(cd "$prefix/include" && pwd -P)" ] ||
    fail "pkg-config --cflags plughost gives '$cflags'; its -I must be the installed $prefix/include"
cc -std=c99 -Wall -Wextra -Werror $cflags $pcflags -shared -Wl,-z,defs \
    -DPH_PACKAGE_NAME='"pcpkg"' -DPH_PACKAGE_VERSION='"2.0.0"' \
    -o "$pkgsrc/pcpkg.so" "$pkgsrc/pcpkg.c" || fail "compiling with pkg-config flags failed"
exported=$(nm -D --defined-only "$pkgsrc/pcpkg.so" | awk '{print $3}')
[ "$exported" = plughost_package_v1 ] ||
    fail "a pkg-config build must export only the descriptor, exports: $exported"

# ---- load both with the installed binary ----
cat >"$tmp/host.ini" <<INI
[host]
package_dirs = oot/build/packages/oot, pcpkg
data_dir = data
INI
ln -s "$pkgsrc" "$tmp/pcpkg"
cd "$tmp"
out=$("$bin" call --local -c host.ini oot.loud.shout text=hello 2>"$tmp/err") ||
    { cat "$tmp/err"; fail "calling the out-of-tree package failed"; }
[ "$out" = '"HELLO!"' ] || fail "oot.loud.shout printed '$out', expected '\"HELLO!\"'"
out=$("$bin" call --local -c host.ini oot.loud.twice v=21 2>"$tmp/err") ||
    { cat "$tmp/err"; fail "calling oot.loud.twice failed"; }
[ "$out" = 42 ] || fail "oot.loud.twice printed '$out', expected 42"
out=$("$bin" call --local -c host.ini pcpkg.num.half v=5 2>"$tmp/err") ||
    { cat "$tmp/err"; fail "calling the pkg-config package failed"; }
[ "$out" = 2.5 ] || fail "pcpkg.num.half printed '$out', expected 2.5"
"$bin" check -c host.ini >"$tmp/check" 2>&1 || { cat "$tmp/check"; fail "check failed"; }
grep -q "oot 0.3.1" "$tmp/check" || fail "check does not list oot 0.3.1"
echo "ok: out-of-tree packages (CMake and pkg-config) load and serve calls"
