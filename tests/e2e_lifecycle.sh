#!/usr/bin/env bash
# The package lifecycle from the command line alone, against the real host:
# a hot reload applies the new manifest (parameters, defaults; host.ini
# overrides kept), manifest-only and sql-only changes are new builds, a
# failed upgrade is fixed and reloaded, remove -> install again, new package
# directories are picked up, disable/enable act on one instance, a build
# that breaks its declared interface without a major version is refused,
# a major bump under dependents says how to upgrade both, and SIGHUP with
# reload = false applies a rebuilt .so.
set -euo pipefail
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  [ -f "$tmp/run.log" ] && tail -30 "$tmp/run.log"
  exit 1
}
src="$PH_SOURCE_DIR/tests/lifecycle"
mkdir -p "$tmp/pk" "$tmp/src"

# build DIR NAME VERSION SOURCE [cflags]: a package directory with its .so
build() {
  local dir=$1 name=$2 ver=$3 c=$4
  shift 4
  mkdir -p "$dir"
  cc -std=c11 -shared -fPIC -fvisibility=hidden -I"$PH_SOURCE_DIR/sdk/include" \
    -DPH_PACKAGE_NAME="\"$name\"" -DPH_PACKAGE_VERSION="\"$ver\"" "$@" \
    -o "$dir/.$name.so.tmp" "$src/$c" || fail "cc $name"
  mv "$dir/.$name.so.tmp" "$dir/$name.so"
}
manifest() { # DIR NAME VERSION [extra lines]
  local dir=$1 name=$2 ver=$3
  shift 3
  mkdir -p "$dir"
  printf '[package]\nname = %s\nversion = %s\n%s\n' "$name" "$ver" "$*" >"$dir/package.ini.tmp"
  mv "$dir/package.ini.tmp" "$dir/package.ini"
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
cat >"$tmp/host.ini" <<INI
[host]
package_dirs = pk
data_dir = data
reload = RELOAD

[http]
listen = 127.0.0.1:$port

[instance shout]

[instance shout2]
package = shout
greeting = Hi

[instance hello-1]
package = hello

[instance hello-2]
package = hello

[instance hello-3]
package = hello
enabled = false
INI
ph() { "$PH_BIN" -c "$tmp/host.ini" --log-level error "$@"; }
start_host() { # RELOAD
  sed -i "s/^reload = .*/reload = $1/" "$tmp/host.ini"
  "$PH_BIN" -c "$tmp/host.ini" --log-level info run >"$tmp/run.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "$url/_/health?ready" >/dev/null 2>&1 && return; sleep 0.1; done
  fail "host did not start"
}
stop_host() { kill "$pid"; wait "$pid" || true; pid=; }
# wait_for WANT CMD...: up to 10 s for the output of CMD to contain WANT
wait_for() {
  local want=$1 out=
  shift
  for _ in $(seq 1 100); do
    out=$("$@" 2>&1 || true)
    grep -qF -- "$want" <<<"$out" && return 0
    sleep 0.1
  done
  fail "waited for '$want' from '$*', last: $out"
}
say() { ph call --url "$url" "$1.shout.say"; }
state_of() { # INSTANCE -> its state in `plughost status`
  ph status --url "$url" | awk -v i="$1" '$1 == i { print $4 }'
}

cp -r "$PH_EXAMPLES/hello" "$tmp/pk/"
build "$tmp/pk/shout" shout 1.0.0 shout.c
manifest "$tmp/pk/shout" shout 1.0.0 "[parameters]
greeting = Hello"
start_host true
[ "$(say shout)" = '"Hello"' ] || fail "shout 1.0.0: $(say shout)"
[ "$(say shout2)" = '"Hi"' ] || fail "shout2 override: $(say shout2)"

# --- 3. a new version's manifest comes with its code (watcher) ---
build "$tmp/src/shout" shout 1.1.0 shout.c
manifest "$tmp/src/shout" shout 1.1.0 "[parameters]
greeting = Hey
suffix = !"
cp "$tmp/src/shout/shout.so" "$tmp/pk/shout/shout.so"
cp "$tmp/src/shout/package.ini" "$tmp/pk/shout/package.ini"
wait_for '"Hey!"' say shout
# (both instances swap in one change, one after the other)
wait_for '"Hi!"' say shout2 # the host.ini override kept, the new parameter there
# a manifest-only change (a default) is a new build
manifest "$tmp/pk/shout" shout 1.1.0 "[parameters]
greeting = Yo
suffix = !"
wait_for '"Yo!"' say shout
# an sql/-only change is a new build too
reloads=$(curl -s "$url/_/packages" | python3 -c 'import json,sys; print([i for i in json.load(sys.stdin)["instances"] if i["instance"]=="shout"][0]["reloads"])')
mkdir -p "$tmp/pk/shout/sql"
echo "SELECT 1;" >"$tmp/pk/shout/sql/upgrade-1.1.0-1.1.1.sql"
wait_for "\"reloads\": $((reloads + 1))" sh -c "curl -s '$url/_/packages' | python3 -c 'import json,sys; [print(json.dumps(i)) for i in json.load(sys.stdin)[\"instances\"] if i[\"instance\"]==\"shout\"]'"

# --- 10. semver enforced on the declared interface ---
build "$tmp/pk/api" api 1.0.0 api.c -DTAG=1
manifest "$tmp/pk/api" api 1.0.0
build "$tmp/pk/app" app 1.0.0 app.c
manifest "$tmp/pk/app" app 1.0.0 "[requires]
api = ^1.0"
wait_for 1 ph call --url "$url" app.app.ping
[ "$(ph call --url "$url" api.math.add a=2 b=40)" = 42 ] || fail "api 1.0.0"
build "$tmp/pk/api" api 1.0.0 api.c -DTAG=2 -DNO_MATH
set +e; out=$(ph reload --url "$url" api 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "an interface break must be refused: $out"
grep -qF "the new build of api 1.0.0 -> 1.0.0 breaks its declared interface without a new major version (semver): removed actor 'math'; keep these or raise the version to 2.0.0" <<<"$out" || fail "$out"
[ "$(ph call --url "$url" api.math.add a=2 b=40)" = 42 ] || fail "the old build must keep serving"
build "$tmp/pk/api" api 1.0.0 api.c -DTAG=3 -DADD_STR
set +e; out=$(ph reload --url "$url" api 2>&1); set -e
grep -qF "method 'math.add': parameter 'b' is now string (was int64)" <<<"$out" || fail "$out"
# adding is compatible
build "$tmp/pk/api" api 1.1.0 api.c -DTAG=4
manifest "$tmp/pk/api" api 1.1.0
ph reload --url "$url" api >/dev/null || fail "a compatible build must load"
[ "$(ph call --url "$url" api.info.tag)" = 4 ] || fail "api 1.1.0 not serving"
# a major version under a ^1 dependent: refused, saying how to upgrade both
build "$tmp/pk/api" api 2.0.0 api.c -DTAG=5 -DNO_MATH
manifest "$tmp/pk/api" api 2.0.0
set +e; out=$(ph reload --url "$url" api 2>&1); set -e
grep -qF "package 'api' 2.0.0 would break 'app', which requires api ^1.0; not reloaded, nothing was changed. To upgrade both together, put a version of 'app' whose range accepts api 2.0.0 in place as well, then run \`plughost reload api\`" <<<"$out" || fail "$out"
[ "$(ph call --url "$url" api.info.tag)" = 4 ] || fail "api 1.1.0 must keep serving"
manifest "$tmp/pk/app" app 2.0.0 "[requires]
api = ^2.0"
build "$tmp/pk/app" app 2.0.0 app.c
ph reload --url "$url" api >/dev/null || fail "api and app 2.0.0 together must load"
[ "$(ph call --url "$url" api.info.tag)" = 5 ] || fail "api 2.0.0 not serving"
[ "$(state_of app)" = running ] || fail "app: $(ph status --url "$url")"

# --- 8. disable/enable act on one instance ---
ph disable --url "$url" hello-1 >/dev/null
[ "$(state_of hello-1)" = disabled ] || fail "hello-1: $(ph status --url "$url")"
[ "$(state_of hello-2)" = running ] || fail "disabling hello-1 stopped hello-2"
ph call --url "$url" hello-2.hello.greet name=Ada | grep -q "Hello, Ada!" || fail "hello-2 does not serve"
set +e; out=$(ph reload --url "$url" hello-1 2>&1); set -e
grep -qF "instance 'hello-1' is disabled; \`plughost enable hello-1\` loads the build on disk and starts it" <<<"$out" || fail "$out"
ph enable --url "$url" hello-1 | grep -q '"result":"running"' || fail "enable hello-1"
[ "$(state_of hello-1)" = running ] || fail "hello-1 after enable"
# an instance switched off in host.ini says where
line=$(grep -n '^\[instance hello-3\]' "$tmp/host.ini" | cut -d: -f1)
set +e; out=$(ph enable --url "$url" hello-3 2>&1); set -e
grep -qF "instance 'hello-3' is switched off in $tmp/host.ini:$line (enabled = false); set enabled = true there and send SIGHUP (or restart the host)" <<<"$out" || fail "$out"
# a package name acts on every instance
ph disable --url "$url" hello | grep -q '"instances":2' || fail "disable hello"
ph enable --url "$url" hello | grep -q '"instances":2' || fail "enable hello"

# --- 4. a failed upgrade, fixed, comes back with `reload` ---
build "$tmp/pk/shop" shop 1.0.0 shop.c
manifest "$tmp/pk/shop" shop 1.0.0
wait_for '"id"' ph call --url "$url" shop.item.new name=pen price=3
build "$tmp/pk/shop" shop 1.1.0 shop.c
mkdir -p "$tmp/pk/shop/sql"
echo "UPDATE itemz SET price = price * 100;" >"$tmp/pk/shop/sql/upgrade-1.0.0-1.1.0.sql"
manifest "$tmp/pk/shop" shop 1.1.0
set +e; out=$(ph reload --url "$url" shop 2>&1); set -e
grep -qF "upgrade script $tmp/pk/shop/sql/upgrade-1.0.0-1.1.0.sql failed at line 1: no such table: itemz" <<<"$out" || fail "$out"
[ "$(ph call --url "$url" shop.item.get id=1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["price"])')" = 3 ] || fail "1.0.0 must keep serving"
echo "UPDATE item SET price = price * 100;" >"$tmp/pk/shop/sql/upgrade-1.0.0-1.1.0.sql"
ph reload --url "$url" shop | grep -q '"result":"reloaded"' || fail "fixed script not picked up"
[ "$(ph call --url "$url" shop.item.get id=1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["price"])')" = 300 ] || fail "script did not run"
stop_host

# a start-up failure (broken script) is fixed and reloaded, without enable
build "$tmp/pk/shop" shop 1.2.0 shop.c -DWITH_NOTE
manifest "$tmp/pk/shop" shop 1.2.0
echo "UPDATE item SET nosuch = 1;" >"$tmp/pk/shop/sql/upgrade-1.1.0-1.2.0.sql"
start_host false
[ "$(state_of shop)" = failed ] || fail "shop should fail at start: $(ph status --url "$url")"
echo "UPDATE item SET price = price + 1;" >"$tmp/pk/shop/sql/upgrade-1.1.0-1.2.0.sql"
ph reload --url "$url" shop >/dev/null || fail "reload of a fixed failed package"
[ "$(state_of shop)" = running ] || fail "shop: $(ph status --url "$url")"
[ "$(ph call --url "$url" shop.item.get id=1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["price"])')" = 301 ] || fail "1.2.0 script did not run"

# --- 9. reload = false: a rebuilt .so is applied by SIGHUP ---
build "$tmp/pk/api" api 2.0.0 api.c -DTAG=6 -DNO_MATH
kill -HUP "$pid"
wait_for 6 ph call --url "$url" api.info.tag

# --- 5. remove, then install again into the running host ---
out=$(ph remove --url "$url" shop)
grep -q "removed package shop" <<<"$out" || fail "$out"
st=$(ph status --url "$url")
grep -q "^shop " <<<"$st" && fail "a removed package still listed: $st"
cp -r "$tmp/src/shout" "$tmp/src/shop-copy" # an unrelated directory stays untouched
build "$tmp/src/shop" shop 1.2.0 shop.c -DWITH_NOTE
manifest "$tmp/src/shop" shop 1.2.0
mkdir -p "$tmp/src/shop/sql"
echo "UPDATE item SET price = price + 1;" >"$tmp/src/shop/sql/upgrade-1.1.0-1.2.0.sql"
out=$(ph install --url "$url" "$tmp/src/shop")
grep -q "installed shop 1.2.0 in $tmp/pk/shop" <<<"$out" || fail "$out"
grep -q "the running host at $url loaded shop" <<<"$out" || fail "$out"
[ "$(state_of shop)" = running ] || fail "shop after install: $(ph status --url "$url")"
[ "$(ph call --url "$url" shop.item.count)" = 1 ] || fail "data lost by remove/install"
# install rehearses the migration on a copy first: a broken script is refused before copying
build "$tmp/src/shop13" shop 1.3.0 shop.c -DWITH_NOTE
manifest "$tmp/src/shop13" shop 1.3.0
cp -r "$tmp/src/shop/sql" "$tmp/src/shop13/"
echo "UPDATE nosuch SET price = 0;" >"$tmp/src/shop13/sql/upgrade-1.2.0-1.3.0.sql"
set +e; out=$(ph install --url "$url" "$tmp/src/shop13" 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "a broken upgrade script must be refused by install: $out"
grep -q "dry run of the migration: .*upgrade-1.2.0-1.3.0.sql failed at line 1: no such table: nosuch" <<<"$out" || fail "$out"
grep -q "shop 1.3.0 was not installed; nothing was changed" <<<"$out" || fail "$out"
grep -q "^version = 1.2.0" "$tmp/pk/shop/package.ini" || fail "a refused install replaced the package"
out=$(ph remove --purge --url "$url" shop)
grep -q "data deleted" <<<"$out" || fail "$out"
grep -q "data is kept" <<<"$(ph status --url "$url")" && fail "status after purge says data kept"
# install compares the declared interface with the installed build before copying (semver)
build "$tmp/src/api21" api 2.1.0 api.c -DTAG=8 -DNO_INFO
manifest "$tmp/src/api21" api 2.1.0
set +e; out=$(ph install --url "$url" "$tmp/src/api21" 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "an interface break must be refused by install: $out"
grep -qF "the new build of api 2.0.0 -> 2.1.0 breaks its declared interface without a new major version (semver): removed actor 'info'; keep these or raise the version to 3.0.0" <<<"$out" || fail "$out"
[ "$(ph call --url "$url" api.info.tag)" = 6 ] || fail "a refused install replaced api"
# a major upgrade of a package and its dependent: refused alone (saying how), installed together
build "$tmp/src/api3" api 3.0.0 api.c -DTAG=9 -DNO_MATH
manifest "$tmp/src/api3" api 3.0.0
build "$tmp/src/app3" app 3.0.0 app.c
manifest "$tmp/src/app3" app 3.0.0 "[requires]
api = ^3.0"
# alone, api 3.0.0 goes beside 2.0.0 (versions side by side) and app keeps api 2.0.0 running
out=$(ph install --url "$url" "$tmp/src/api3" 2>&1) || fail "api 3.0.0 beside 2.0.0: $out"
grep -qF "note: api 3.0.0 goes beside the installed versions, but no instance runs it: package 'api': 2.0.0 chosen; not 3.0.0: outside ^2" <<<"$out" || fail "$out"
[ "$(ph call --url "$url" api.info.tag)" = 6 ] || fail "api 3.0.0 alone replaced 2.0.0 under app"
out=$(ph install --url "$url" "$tmp/src/api3" "$tmp/src/app3")
grep -q "installed api 3.0.0" <<<"$out" && grep -q "installed app 3.0.0" <<<"$out" || fail "$out"
[ "$(ph call --url "$url" api.info.tag)" = 9 ] || fail "api 3.0.0 not serving"
[ "$(state_of app)" = running ] || fail "app 3.0.0: $(ph status --url "$url")"
# install refuses a package whose library is not a complete shared object
mkdir -p "$tmp/src/broken"
manifest "$tmp/src/broken" broken 1.0.0
head -c 100 "$tmp/pk/api/api.so" >"$tmp/src/broken/broken.so"
set +e; out=$(ph install --url "$url" "$tmp/src/broken" 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "a truncated library must be refused: $out"
grep -q "broken.so is truncated" <<<"$out" || fail "$out"
[ ! -e "$tmp/pk/broken" ] || fail "a refused package was copied"
# install refuses a package whose dependency is missing, naming it
build "$tmp/src/lonely" lonely 1.0.0 app.c
manifest "$tmp/src/lonely" lonely 1.0.0 "[requires]
nosuch = ^1.0"
set +e; out=$(ph install --url "$url" "$tmp/src/lonely" 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "a missing dependency must be refused: $out"
grep -q "instance 'lonely' could not run: .*nosuch" <<<"$out" || fail "$out"
grep -q "lonely 1.0.0 was not installed; nothing was changed" <<<"$out" || fail "$out"
stop_host

# --- 5b. a package directory appearing in a watched directory is picked up ---
start_host true
build "$tmp/src/late" late 1.0.0 app.c
manifest "$tmp/src/late" late 1.0.0
mv "$tmp/src/late" "$tmp/pk/late"
wait_for 1 ph call --url "$url" late.app.ping
# a directory replaced by mv (a release layout) is a new build
build "$tmp/src/late2" late 1.1.0 app.c
manifest "$tmp/src/late2" late 1.1.0
mv "$tmp/pk/late" "$tmp/src/late-old" && mv "$tmp/src/late2" "$tmp/pk/late"
# 9. a build written just before a SIGHUP is loaded, even half-written at the time
build "$tmp/src/api7" api 3.0.0 api.c -DTAG=7 -DNO_MATH
size=$(stat -c %s "$tmp/src/api7/api.so")
head -c $((size / 2)) "$tmp/src/api7/api.so" >"$tmp/pk/api-3.0.0/api.so"
sleep 0.2
kill -HUP "$pid"
sleep 0.2
cat "$tmp/src/api7/api.so" >"$tmp/pk/api-3.0.0/api.so"
wait_for 7 ph call --url "$url" api.info.tag
wait_for "late  " sh -c "'$PH_BIN' -c '$tmp/host.ini' status --url '$url' | grep -E '^late +late +1.1.0 +running'"
# POST /_/remove/NAME (admin) removes a package, data kept
tok=$(cat "$tmp/data/admin.token")
out=$(curl -s -X POST -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' -d '{}' "$url/_/remove/late")
grep -q '"result":"removed; data kept"' <<<"$out" || fail "POST /_/remove: $out"
[ ! -e "$tmp/pk/late" ] || fail "POST /_/remove left the directory"
# a release layout: packages/rel -> releases/1.0.0, switched by renaming a new link over it
build "$tmp/releases/1.0.0" rel 1.0.0 app.c
manifest "$tmp/releases/1.0.0" rel 1.0.0
build "$tmp/releases/1.1.0" rel 1.1.0 app.c
manifest "$tmp/releases/1.1.0" rel 1.1.0
ln -s "$tmp/releases/1.0.0" "$tmp/pk/rel"
wait_for "rel" sh -c "'$PH_BIN' -c '$tmp/host.ini' status --url '$url' | grep -E '^rel +rel +1.0.0 +running'"
ln -s "$tmp/releases/1.1.0" "$tmp/pk/.rel.new" && mv -T "$tmp/pk/.rel.new" "$tmp/pk/rel"
wait_for "rel" sh -c "'$PH_BIN' -c '$tmp/host.ini' status --url '$url' | grep -E '^rel +rel +1.1.0 +running'"
stop_host
grep -q "SIGSEGV\|AddressSanitizer\|runtime error" "$tmp/run.log" && fail "sanitizer or crash report"

# 10. a restart does not bypass semver: a build copied by hand is held to the one that ran before
build "$tmp/pk/api" api 3.0.1 api.c -DNO_INFO
manifest "$tmp/pk/api" api 3.0.1
set +e; out=$(ph call --local api.math.add a=1 b=2 2>&1); set -e
grep -qF "instance 'api': the build of api 3.0.1 breaks the declared interface of api 3.0.0, which ran before, without a new major version (semver): removed actor 'info'; keep these or raise the version to 4.0.0" <<<"$out" \
  || fail "a restart loaded an interface-breaking build: $out"
# and install compares with the build that ran (3.0.0), not the refused one on disk (3.0.1)
build "$tmp/src/api302" api 3.0.2 api.c -DNO_INFO
manifest "$tmp/src/api302" api 3.0.2
set +e; out=$(ph install "$tmp/src/api302" 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "install measured semver against the refused build on disk: $out"
grep -qF "the new build of api 3.0.0 -> 3.0.2 breaks its declared interface without a new major version (semver): removed actor 'info'" <<<"$out" || fail "$out"
# a package kept under another directory name is not installed a second time beside it
cp -r "$tmp/pk/hello" "$tmp/src/hello-new"
mv "$tmp/pk/hello" "$tmp/pk/hello-current"
set +e; out=$(ph install "$tmp/src/hello-new" 2>&1); rc=$?; set -e
[ $rc = 1 ] || fail "install beside another copy: $out"
grep -qF "package 'hello' is installed in $tmp/pk/hello-current, not in $tmp/pk/hello, which install replaces; \`plughost remove hello\` first (its data is kept)" <<<"$out" || fail "$out"
[ ! -e "$tmp/pk/hello" ] || fail "install copied a second hello"
echo "e2e_lifecycle: ok"
