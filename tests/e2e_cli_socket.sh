#!/usr/bin/env bash
# The CLI reaches the local host through its Unix socket (issue 15 item 5):
# the daemon (plughostd) links no libcurl, the CLI does; the socket is 0600;
# the host's own user needs no token on it; a peer of another uid is refused
# (by the file mode, and by SO_PEERCRED when the mode lets it connect); no
# host running is exit 3 with the socket named; a second host on the same
# socket refuses to start naming it; a stale socket (host killed) is
# replaced; SIGTERM removes it; a socket path longer than sockaddr_un holds
# works; --url keeps the path of the URL as a prefix (a wrong one: a 404
# that says so).
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
user=
cleanup_all() {
  [ -n "${pid2:-}" ] && kill -9 "$pid2" 2>/dev/null
  [ -n "$user" ] && userdel "$user" 2>/dev/null
  e2e_cleanup
}
trap cleanup_all EXIT

# the process that serves has no HTTP client: no libcurl in plughostd, libcurl in plughost
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
needed "$PH_DAEMON" | grep -q '^libcurl' && fail "plughostd needs libcurl: $(needed "$PH_DAEMON" | tr '\n' ' ')"
needed "$PH_BIN" | grep -q '^libcurl' || fail "plughost does not link libcurl: $(needed "$PH_BIN" | tr '\n' ' ')"
nm "$PH_DAEMON" 2>/dev/null | grep -q " ph_client_" && fail "plughostd has the HTTP client (host/client.c)"
echo "  plughostd: no libcurl; plughost: libcurl"

cp -r "$PH_EXAMPLES" "$tmp/pk"
mkdir -m 1777 "$tmp/pub" # a directory another user may reach: the socket's mode is what guards it
chmod 711 "$tmp"
port=$(free_port)
sock="$tmp/pub/plughost.sock"
printf '[host]\npackage_dirs = pk\ndata_dir = data\n[http]\nlisten = 127.0.0.1:%s\nsocket = pub/plughost.sock\n' \
  "$port" >"$tmp/host.ini"
chmod 644 "$tmp/host.ini"
ph() { "$PH_BIN" -c "$tmp/host.ini" "$@"; }

set +e; out=$(ph status 2>&1); rc=$?; set -e
[ $rc = 3 ] && [ "$out" = "plughost: status: no host is running (no socket at $sock); start one with plughost run" ] ||
  fail "status without a host: exit $rc: $out"
echo "  no host: exit 3, the socket named"

start_host -c "$tmp/host.ini"
wait_ready "http://127.0.0.1:$port"
for _ in $(seq 1 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || fail "no socket at $sock"
[ "$(stat -c %a "$sock")" = 600 ] || fail "the socket's mode is $(stat -c %a "$sock"), not 600"
grep -qF "local socket $sock (mode 0600)" "$tmp/run.log" || fail "the log does not name the socket"

# the host's own user: no token needed, management included
mv "$tmp/data/admin.token" "$tmp/token.away" # this CLI cannot read a token now
out=$(ph status) || fail "status over the socket: $out"
grep -q '^calc  *calc  *1.0.0  *running' <<<"$out" || fail "status over the socket: $out"
out=$(ph reload calc) || fail "reload over the socket without a token: $out"
grep -q '"operation":"reload"' <<<"$out" || fail "reload: $out"
[ "$(ph call calc.math.add a=2 b=40)" = 42 ] || fail "call over the socket"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{}' \
  "http://127.0.0.1:$port/_/reload/calc")
[ "$code" = 401 ] || fail "TCP without the token answered $code to a reload: $(cat "$tmp/body")"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' --unix-socket "$sock" -H 'Host: evil.example' \
  http://localhost/_/packages)
[ "$code" = 200 ] || fail "the socket refused a trusted peer ($code): $(cat "$tmp/body")"
mv "$tmp/token.away" "$tmp/data/admin.token"
echo "  socket 0600; its user manages without a token (TCP without it: 401)"

# --url: TCP, the URL's path a prefix; a wrong prefix is a 404 that says so
ph status --url "http://127.0.0.1:$port/" --json | grep -q '"state":"running"' || fail "status --url"
set +e; out=$(ph status --url "http://127.0.0.1:$port/wrong/" 2>&1); rc=$?; set -e
[ $rc = 1 ] && grep -qF "nothing is mounted at /wrong/_/packages" <<<"$out" &&
  grep -qF "(HTTP 404); is the host served under /wrong/? check the path of the URL (--url)" <<<"$out" ||
  fail "a wrong prefix: exit $rc: $out"
echo "  --url over TCP; a wrong path prefix: 404 naming it"

# a peer of another uid
if [ "$(id -u)" != 0 ] || ! command -v useradd >/dev/null || ! command -v setpriv >/dev/null; then
  echo "  another uid: skipped (needs root, useradd and setpriv to run as a throwaway user)"
else
  user="phsock$$"
  useradd -M -N -s /usr/sbin/nologin "$user" || fail "useradd $user"
  uid=$(id -u "$user") gid=$(id -g "$user")
  as_user() { setpriv --reuid "$uid" --regid "$gid" --clear-groups "$@"; }
  set +e; out=$(as_user "$PH_BIN" -c "$tmp/host.ini" status 2>&1); rc=$?; set -e
  [ $rc = 1 ] && grep -qF "plughost: status: cannot use the local socket $sock: Permission denied; it is the host's own" <<<"$out" ||
    fail "another uid through the 0600 socket: exit $rc: $out"
  chmod 666 "$sock" # the mode no longer guards it: SO_PEERCRED still does
  set +e; out=$(as_user "$PH_BIN" -c "$tmp/host.ini" status 2>&1); rc=$?; set -e
  [ $rc = 1 ] && grep -qF "plughost: status: uid $uid may not use this host's local socket: only root and the host's own user may; use the TCP address with the admin token (HTTP 403)" <<<"$out" ||
    fail "another uid, socket 0666: exit $rc: $out"
  chmod 600 "$sock"
  echo "  another uid: refused by the mode (0600) and by its peer credentials (403)"
fi

# a second host on the same socket refuses to start, naming it
pid2=
"$PH_BIN" -c "$tmp/host.ini" --data-dir "$tmp/data2" --listen "127.0.0.1:$(free_port)" run >"$tmp/run2.log" 2>&1 &
pid2=$!
for _ in $(seq 1 300); do kill -0 "$pid2" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid2" 2>/dev/null && fail "a second host on $sock kept running: $(cat "$tmp/run2.log")"
set +e; wait "$pid2"; rc=$?; set -e
pid2=
[ $rc = 1 ] && grep -qF "another host is running on the local socket $sock; stop it first" "$tmp/run2.log" ||
  fail "the second host: exit $rc: $(cat "$tmp/run2.log")"
[ -S "$sock" ] && ph status >/dev/null || fail "the second host broke the first one's socket"
echo "  a second host on the socket: refused, naming it"

stop_host
[ ! -e "$sock" ] || fail "the socket is still there after SIGTERM"
echo "  SIGTERM: the socket removed"

# a data directory deep enough that its socket path does not fit a sockaddr_un; killed, restarted
deep="$tmp/$(printf 'd%.0s' $(seq 1 60))/$(printf 'e%.0s' $(seq 1 60))"
mkdir -p "$deep"
dsock="$deep/plughost.sock"
port=$(free_port)
dph() { "$PH_BIN" --packages "$tmp/pk" --data-dir "$deep" "$@"; }
start_host --packages "$tmp/pk" --data-dir "$deep" --listen "127.0.0.1:$port"
wait_ready "http://127.0.0.1:$port"
[ -S "$dsock" ] || fail "no socket at $dsock (${#dsock} bytes)"
dph status | grep -q '^calc .*running' || fail "status over a socket of ${#dsock} bytes"
kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
[ -S "$dsock" ] || fail "kill -9 took the socket away?"
set +e; out=$(dph status 2>&1); rc=$?; set -e
[ $rc = 3 ] && [ "$out" = "plughost: status: no host is running (the socket at $dsock is left from a host that stopped); start one with plughost run" ] ||
  fail "status on a stale socket: exit $rc: $out"
start_host --packages "$tmp/pk" --data-dir "$deep" --listen "127.0.0.1:$port"
wait_ready "http://127.0.0.1:$port"
grep -qF "replaced the stale local socket $dsock" "$tmp/run.log" || fail "the stale socket was not replaced"
dph status | grep -q '^calc .*running' || fail "status after replacing the stale socket"
stop_host
[ ! -e "$dsock" ] || fail "the socket is still there after SIGTERM"
echo "  a socket path of ${#dsock} bytes; a stale socket (kill -9) replaced"

# a host that stops removes its socket only if it is still its own: here a second host made one
# at the same path after the file was deleted, and keeps it when the first one stops
port_a=$(free_port) port_b=$(free_port)
mkdir -p "$tmp/take"
for x in a b; do
  p=$([ $x = a ] && echo "$port_a" || echo "$port_b")
  printf '[host]\npackage_dirs = ../pk\ndata_dir = data_%s\n[http]\nlisten = 127.0.0.1:%s\nsocket = take.sock\n' \
    "$x" "$p" >"$tmp/take/$x.ini"
done
start_host -c "$tmp/take/a.ini"
wait_ready "http://127.0.0.1:$port_a"
pid_a=$pid
rm "$tmp/take/take.sock"
"$PH_BIN" -c "$tmp/take/b.ini" run >"$tmp/take/b.log" 2>&1 &
pid2=$!
wait_ready "http://127.0.0.1:$port_b"
pid=$pid_a
stop_host
[ -S "$tmp/take/take.sock" ] || fail "the stopping host removed the socket the other one made"
grep -q "left the local socket $tmp/take/take.sock in place" "$tmp/run.log" || fail "not said: $(tail -3 "$tmp/run.log")"
"$PH_BIN" -c "$tmp/take/b.ini" status | grep -q '^calc .*running' || fail "status over the second host's socket"
kill "$pid2"; wait "$pid2" || true; pid2=
[ ! -e "$tmp/take/take.sock" ] || fail "the second host left its socket"
echo "  a stopping host leaves a socket another host made at its path"
echo "1 passed, 0 failed"
