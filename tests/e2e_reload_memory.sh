#!/usr/bin/env bash
# The real host's RSS, descriptors and mappings stay flat from reload 300
# to reload 1,000 of a package with a 10 KB package.ini (issue: every
# swapped-in manifest was kept). Sanitizer builds keep freed memory in
# quarantine: there descriptors and mappings are compared over 200 reloads,
# and a few mappings may be the allocator's own.
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
total=${PH_RELOADS:-1000} check_rss=1
# measured from the 300th reload: by then every thread that loads a build (one watches each
# load for its time limit) has its malloc arena, which the first hundreds of reloads warm up
warm=300
if [ "${PH_SANITIZE:-0}" = 1 ]; then total=200 warm=100 check_rss=0; fi
mkdir -p "$tmp/pk/api" "$tmp/b"
for tag in 1 2; do
  cc -std=c11 -shared -fPIC -fvisibility=hidden -I"$PH_SOURCE_DIR/sdk/include" \
    -DPH_PACKAGE_NAME='"api"' -DPH_PACKAGE_VERSION='"1.0.0"' -DTAG=$tag \
    -o "$tmp/b/$tag.so" "$PH_SOURCE_DIR/tests/lifecycle/api.c"
done
{
  printf '[package]\nname = api\nversion = 1.0.0\n'
  for i in $(seq 1 100); do
    printf '; %03d padding that makes this manifest about ten kilobytes long: 0123456789abcdef\n' "$i"
  done
} >"$tmp/pk/api/package.ini"
cp "$tmp/b/1.so" "$tmp/pk/api/api.so"
port=$(free_port)
printf '[host]\npackage_dirs = pk\ndata_dir = data\nreload = false\nlog_level = warn\n[http]\nlisten = 127.0.0.1:%s\n' "$port" >"$tmp/host.ini"
start_host -c "$tmp/host.ini"
u="http://127.0.0.1:$port"
wait_ready "$u"
tok=$(cat "$tmp/data/admin.token")
usage() { # RSS KiB, descriptors, mappings of the host
  # Each connection has a thread of its own, which closes its socket a moment
  # after the client saw the answer: the fewest descriptors of a few looks
  # (a leak shows in every look).
  local fds=999999 n
  for _ in 1 2 3 4 5; do
    n=$(ls /proc/$pid/fd | wc -l)
    [ "$n" -lt "$fds" ] && fds=$n
    sleep 0.05
  done
  echo "$(awk '/^VmRSS/ {print $2}' /proc/$pid/status) $fds $(wc -l </proc/$pid/maps)"
}
for i in $(seq 1 "$total"); do
  cp "$tmp/b/$((i % 2 + 1)).so" "$tmp/pk/api/api.so"
  out=$(curl -s -X POST -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' -d '{}' "$u/_/reload/api")
  grep -q '"result":"reloaded"' <<<"$out" || fail "reload $i: $out"
  [ "$i" = "$warm" ] && read -r rss0 fd0 maps0 <<<"$(usage)"
done
read -r rss1 fd1 maps1 <<<"$(usage)"
[ "$(curl -s -X POST -H 'Content-Type: application/json' -d '{}' "$u/api/actors/info/tag")" = $((total % 2 + 1)) ] ||
  fail "the last build is not serving"
echo "reloads $warm -> $total of the real host: RSS $rss0 -> $rss1 KiB ($((rss1 - rss0))), fds $fd0 -> $fd1, maps $maps0 -> $maps1"
[ "$fd1" = "$fd0" ] || fail "descriptors grew: $fd0 -> $fd1"
# A build kept per reload adds its 4-5 segments every time (hundreds over
# this run); the allocator may map an arena or a quarantine chunk or two.
[ $((maps1 - maps0)) -le 8 ] || fail "mappings grew: $maps0 -> $maps1"
# RSS moves by several hundred KiB either way between runs (the allocator's arenas of the
# threads that serve and load); the kept-manifest leak this guards against was 10 KB a
# reload, 7 MB over this run: 2 MiB tells the two apart.
[ "$check_rss" = 0 ] || [ $((rss1 - rss0)) -le 2048 ] || fail "RSS grew by $((rss1 - rss0)) KiB"
echo "1 passed, 0 failed"
