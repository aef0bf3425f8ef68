#!/usr/bin/env bash
# `make deb`'s packages, as an operator gets them: CPack builds plughost and
# plughost-dev from a clean release build; lintian reports no error; both
# install with dpkg -i (the conffile registered, the unit in place); a
# package builds against the installed SDK (CMake and pkg-config) and the
# installed binary calls it; `cmake --install` of that package puts it in the
# installed host's package directory (/var/lib/plughost/packages, not
# /usr/local); postinst makes the service's user; dpkg -r keeps
# /var/lib/plughost, dpkg -P takes everything away again.
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
if [ "${PH_SANITIZE:-0}" = 1 ]; then
  echo "sanitizer build: the packages are built from a release build once, in the plain run"
  exit 77 # reported as skipped
fi
if [ "$(dpkg-query -W -f='${Status}' plughost 2>/dev/null)" = "install ok installed" ]; then
  echo "plughost is installed on this machine already: not replacing it; skipped"
  exit 77 # reported as skipped
fi
removed=
had_user=$(getent passwd plughost || true)
uninstall() {
  [ -n "$removed" ] || dpkg -P plughost plughost-dev >/dev/null 2>&1 || true
  # the system user postinst made stays after a purge (Debian policy); this machine had none
  [ -n "$had_user" ] || ! getent passwd plughost >/dev/null || deluser --system plughost >/dev/null 2>&1 || true
  e2e_cleanup
}
trap uninstall EXIT
cmake -S "$PH_SOURCE_DIR" -B "$tmp/b" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
  -DPH_BUILD_TESTS=OFF -DPH_BUILD_BENCH=OFF >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; fail cmake; }
cmake --build "$tmp/b" -j 2 >"$tmp/build.log" 2>&1 || { tail -20 "$tmp/build.log"; fail build; }
(cd "$tmp/b" && cpack -G DEB) >"$tmp/cpack.log" 2>&1 || { cat "$tmp/cpack.log"; fail cpack; }
version=$(sed -n 's/^project(plughost VERSION \([0-9.]*\).*/\1/p' "$PH_SOURCE_DIR/CMakeLists.txt")
host_deb="$tmp/b/plughost_${version}_amd64.deb" dev_deb="$tmp/b/plughost-dev_${version}_all.deb"
[ -f "$host_deb" ] && [ -f "$dev_deb" ] || fail "no $host_deb or $dev_deb: $(ls "$tmp/b"/*.deb)"
lint=$(lintian "$host_deb" "$dev_deb" 2>&1 | grep -v 'running with root privileges' || true)
! grep -q '^E:' <<<"$lint" || fail "lintian errors: $lint"
echo "  lintian: no errors$(grep -c '^W:' <<<"$lint" | sed 's/^/, warnings: /')"
grep '^W:' <<<"$lint" | sed 's/^/    /' || true
for script in postinst prerm postrm; do
  dpkg-deb -I "$host_deb" "$script" >/dev/null 2>&1 || fail "the package has no $script"
done

dpkg -i "$host_deb" "$dev_deb" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -i"; }
[ "$(dpkg-query -W -f='${Status}' plughost)" = "install ok installed" ] || fail "plughost not installed"
dpkg-query -W -f='${Conffiles}' plughost | grep -q '/etc/plughost/host.ini' || fail "host.ini is no conffile"
[ -f /usr/lib/systemd/system/plughost.service ] || [ -f /lib/systemd/system/plughost.service ] ||
  fail "no plughost.service installed"
[ -f /usr/lib/plughost/packages/pkgmgr/pkgmgr.so ] || fail "pkgmgr not installed"
/usr/bin/plughost --version | grep -q "$version" || fail "the installed binary: $(/usr/bin/plughost --version)"
man=$(dpkg -L plughost | grep '/man1/plughost\.1\.gz$') || fail "no plughost(1) in the package"
if [ -e "$man" ] && command -v man >/dev/null; then # an image may exclude /usr/share/man
  MANWIDTH=80 man -l "$man" 2>/dev/null | grep -q "plughost - application host for C packages" ||
    fail "man plughost: $(man -l "$man" 2>&1 | head -5)"
fi
# two binaries: the CLI (libcurl) and the daemon it execs (no HTTP client)
[ -x /usr/libexec/plughost/plughostd ] || fail "no /usr/libexec/plughost/plughostd"
readelf -d /usr/libexec/plughost/plughostd | grep -q 'NEEDED.*libcurl' && fail "the installed daemon needs libcurl"
dpkg-query -W -f='${Depends}' plughost | grep -q libcurl || fail "plughost does not depend on libcurl: $(dpkg-query -W -f='${Depends}' plughost)"
grep -q '^socket = /run/plughost/plughost.sock' /etc/plughost/host.ini || fail "host.ini has no socket in /run/plughost"
# without -c the installed CLI reads /etc/plughost/host.ini (FHS): it finds the shipped pkgmgr
out=$(cd "$tmp" && /usr/bin/plughost list 2>&1) || fail "plughost list without -c: $out"
grep -q 'pkgmgr' <<<"$out" || fail "plughost list without -c does not read /etc/plughost/host.ini: $out"
# postinst: the service's system user, and /etc/plughost writable by its group (the unit's
# ReadWritePaths= lets the package manager page write host.ini under ProtectSystem=strict)
getent passwd plughost >/dev/null || fail "postinst made no user plughost"
[ "$(stat -c '%U:%G %a' /etc/plughost)" = "root:plughost 775" ] || fail "/etc/plughost: $(stat -c '%U:%G %a' /etc/plughost)"
[ "$(stat -c '%G' /etc/plughost/host.ini)" = plughost ] || fail "host.ini: $(stat -c '%U:%G %a' /etc/plughost/host.ini)"
unit=$(ls /usr/lib/systemd/system/plughost.service /lib/systemd/system/plughost.service 2>/dev/null | head -1)
grep -qx 'User=plughost' "$unit" && grep -qx 'ReadWritePaths=/etc/plughost' "$unit" || fail "the unit: $(cat "$unit")"
echo "  dpkg -i: plughost and plughost-dev installed; host.ini a conffile; unit, man page, pkgmgr in place"
echo "  postinst: user plughost; /etc/plughost root:plughost 775 (ReadWritePaths= in the unit)"
# an upgrade (configure with the old version) keeps the administrator's read-only host.ini
chmod 0444 /etc/plughost/host.ini
dpkg -i "$host_deb" >"$tmp/dpkg2.log" 2>&1 || { cat "$tmp/dpkg2.log"; fail "dpkg -i again"; }
[ "$(stat -c '%a' /etc/plughost/host.ini)" = 444 ] ||
  fail "reinstalling made host.ini $(stat -c '%a' /etc/plughost/host.ini) again (the admin made it 444)"
chmod 0664 /etc/plughost/host.ini
echo "  postinst on an upgrade keeps a read-only host.ini"

# a package built against the installed SDK, with CMake (and installed by it) ...
mkdir -p "$tmp/shout"
cat >"$tmp/shout/package.ini" <<'INI'
[package]
name = shout
version = 1.0.0
INI
cat >"$tmp/shout/shout.c" <<'C'
#include <plughost/sdk.h>
static int64_t twice(ph_ctx *ctx, int64_t n) { (void)ctx; return 2 * n; }
static const ph_method methods[] = { PH_METHOD(twice, PH_I64, PH_ARG("n", PH_I64)) };
PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("num", methods)));
C
printf 'cmake_minimum_required(VERSION 3.20)\nproject(shout C)\nfind_package(plughost REQUIRED)\nplughost_add_package(shout SOURCES shout.c)\n' \
  >"$tmp/shout/CMakeLists.txt"
cmake -S "$tmp/shout" -B "$tmp/shout/build" >"$tmp/pkg.log" 2>&1 && cmake --build "$tmp/shout/build" >>"$tmp/pkg.log" 2>&1 ||
  { cat "$tmp/pkg.log"; fail "building a package against plughost-dev"; }
out=$(/usr/bin/plughost --packages "$tmp/shout/build/packages" --data-dir "$tmp/data" --log-level error \
  call --local shout.num.twice n=21) || fail "call: $out"
[ "$out" = 42 ] || fail "shout.num.twice n=21 gave $out"
# cmake --install: where the installed host reads what an operator installs, not /usr/local
DESTDIR="$tmp/root" cmake --install "$tmp/shout/build" >/dev/null
[ -f "$tmp/root/var/lib/plughost/packages/shout/shout.so" ] ||
  fail "cmake --install of a package: $(cd "$tmp/root" && find . -type f)"
# ... unless a prefix was given
cmake -S "$tmp/shout" -B "$tmp/shout/b2" -DCMAKE_INSTALL_PREFIX=/opt/ph >>"$tmp/pkg.log" 2>&1 &&
  cmake --build "$tmp/shout/b2" >>"$tmp/pkg.log" 2>&1 || { cat "$tmp/pkg.log"; fail "the build with a prefix"; }
DESTDIR="$tmp/root2" cmake --install "$tmp/shout/b2" >/dev/null
[ -f "$tmp/root2/opt/ph/lib/plughost/packages/shout/shout.so" ] ||
  fail "cmake --install with a prefix: $(cd "$tmp/root2" && find . -type f)"
cmake --install "$tmp/shout/build" >/dev/null
out=$(cd "$tmp" && /usr/bin/plughost list 2>&1) || fail "plughost list after cmake --install: $out"
grep -q '^shout ' <<<"$out" || fail "the installed host does not see the package cmake --install put: $out"
# ... and with plain cc and pkg-config
pc_dir=$(realpath -m "$(pkg-config --variable=packagesdir plughost)")
[ "$pc_dir" = /usr/lib/plughost/packages ] || fail "pkg-config packagesdir: $pc_dir"
mkdir -p "$tmp/pc/shout" && cp "$tmp/shout/package.ini" "$tmp/pc/shout/"
# shellcheck disable=SC2046
cc -std=c11 $(pkg-config --cflags plughost) $(pkg-config --variable=package_cflags plughost) -shared \
  -DPH_PACKAGE_NAME='"shout"' -DPH_PACKAGE_VERSION='"1.0.0"' -o "$tmp/pc/shout/shout.so" "$tmp/shout/shout.c" ||
  fail "cc with pkg-config"
out=$(/usr/bin/plughost --packages "$tmp/pc" --data-dir "$tmp/data2" --log-level error call --local shout.num.twice n=4)
[ "$out" = 8 ] || fail "the pkg-config build gave $out"
echo "  a package built against the installed SDK (CMake, pkg-config) runs; cmake --install places it"
# the installed `plughost run` execs the installed daemon; the CLI reaches it through its socket
# (its own host.ini: without -c the installed CLI would read /etc/plughost/host.ini, whose
# socket in /run/plughost belongs to the service)
port=$(free_port)
printf '[host]\npackage_dirs = pc\ndata_dir = data3\n[http]\nlisten = 127.0.0.1:%s\n' "$port" >"$tmp/h3.ini"
/usr/bin/plughost -c "$tmp/h3.ini" --log-level warn run >"$tmp/run.log" 2>&1 &
pid=$!
wait_ready "http://127.0.0.1:$port"
[ "$(readlink "/proc/$pid/exe")" = /usr/libexec/plughost/plughostd ] || fail "run is $(readlink "/proc/$pid/exe")"
out=$(/usr/bin/plughost -c "$tmp/h3.ini" call shout.num.twice n=5) || fail "call: $out"
[ "$out" = 10 ] && [ -S "$tmp/data3/plughost.sock" ] || fail "call over the socket gave $out"
stop_host
echo "  plughost run execs /usr/libexec/plughost/plughostd; the CLI calls it through its socket"

dpkg -r plughost plughost-dev >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -r"; }
[ ! -e /usr/bin/plughost ] || fail "dpkg -r left /usr/bin/plughost"
[ -f /var/lib/plughost/packages/shout/shout.so ] || fail "dpkg -r deleted /var/lib/plughost"
dpkg -P plughost plughost-dev >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -P"; }
removed=1
[ ! -e /usr/bin/plughost ] && [ ! -e /usr/include/plughost/sdk.h ] && [ ! -e /etc/plughost/host.ini ] ||
  fail "dpkg -P left files behind"
[ ! -e /var/lib/plughost ] || fail "dpkg -P left /var/lib/plughost: $(find /var/lib/plughost | head)"
echo "  dpkg -r keeps /var/lib/plughost; dpkg -P removes it and the configuration"
echo "1 passed, 0 failed"
