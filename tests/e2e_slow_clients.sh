#!/usr/bin/env bash
# Slow clients (issue 9, failure 8): a connection that sends one byte every
# 2 s is dropped at [http] request_timeout although it is never idle for
# connection_timeout, and hundreds of such connections from a few addresses
# (127.0.0.2-9) filling max_connections do not lock out a new client from
# 127.0.0.1, which is answered every time, nearly always within 0.5 s.
set -euo pipefail
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/run.log" ] && tail -n 20 "$tmp/run.log"; exit 1; }
mkdir -p "$tmp/pk"
cp -r "$PH_EXAMPLES/calc" "$tmp/pk/"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$tmp/host.ini" <<INI
[host]
package_dirs = pk
data_dir = data
[http]
listen = 127.0.0.1:$port
request_timeout = 2
connection_timeout = 30
max_connections = 120
max_connections_per_ip = 64
INI
"$PH_BIN" -c "$tmp/host.ini" run >"$tmp/run.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do curl -sf -o /dev/null "http://127.0.0.1:$port/_/health?ready" && break; sleep 0.1; done
python3 - "$port" <<'PY'
import socket, sys, time, threading
port = int(sys.argv[1])
def dial(src):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(3)
    s.connect(("127.0.0.1", port))
    return s

# 1. one byte every 2 s: dropped at the 2 s deadline, not kept for the 30 s idle timeout
s = dial("127.0.0.1")
req = b"GET /_/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
t0, closed = time.monotonic(), None
for b in req:
    try:
        s.send(bytes([b]))
        s.settimeout(2)
        if s.recv(1) == b"":
            closed = time.monotonic() - t0
            break
    except socket.timeout:
        continue
    except OSError:
        closed = time.monotonic() - t0
        break
    if time.monotonic() - t0 > 12:
        break
s.close()
if closed is None or closed > 6:
    sys.exit("FAIL: a one-byte-every-2-s client was not dropped (after %.1f s)" % (time.monotonic() - t0))
print("slow client dropped after %.1f s" % closed)

# 2. hundreds of slow connections from 8 addresses; a new client still gets in
stop = time.monotonic() + 6
opened = [0]
def attacker(src):
    socks = []
    while time.monotonic() < stop:
        while len(socks) < 50 and time.monotonic() < stop:
            try:
                socks.append(dial(src))
                socks[-1].send(b"GET /_/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
                opened[0] += 1
            except OSError:
                break
        alive = []
        for c in socks:
            try:
                c.send(b"a")
                alive.append(c)
            except OSError:
                c.close()
        socks = alive
        time.sleep(0.5)
    for c in socks:
        c.close()
threads = [threading.Thread(target=attacker, args=("127.0.0.%d" % i,)) for i in range(2, 10)]
for t in threads:
    t.start()
time.sleep(2.5)  # let the slow connections fill the server
worst, failures, quick = 0.0, 0, 0
def health():
    """One GET /_/health: its answer, or None when the connection failed before any byte."""
    try:
        c = dial("127.0.0.1")
        c.sendall(b"GET /_/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = c.recv(4096)
        c.close()
        return data or None
    except OSError:
        return None
retried = 0
for i in range(10):
    t = time.monotonic()
    data = health()
    if data is None:  # reset before any byte: an idempotent GET is retried once (RFC 9110 9.2.2)
        retried += 1
        data = health()
    if not data or not data.startswith(b"HTTP/1.1 200"):
        failures += 1
        print("new client %d: %r" % (i, data[:80] if data else data))
    took = time.monotonic() - t
    worst = max(worst, took)
    quick += took < 0.5
    time.sleep(0.2)
for t in threads:
    t.join()
print("%d slow connections opened; new client: %d/10 failed, %d/10 within 0.5 s, slowest %.3f s, "
      "%d retried once" % (opened[0], failures, quick, worst, retried))
if opened[0] < 300:
    sys.exit("FAIL: only %d slow connections were opened; the test did not load the server" % opened[0])
# A SYN dropped while the accept queue overflows costs one 1 s retransmit: allowed, rarely.
if failures or retried > 1 or worst > 2.0 or quick < 8:
    sys.exit("FAIL: the new client was locked out")
PY
m=$(curl -s "http://127.0.0.1:$port/_/metrics")
grep -q 'plughost_http_connections_cut_total{reason="deadline"} [1-9]' <<<"$m" || fail "no deadline cuts counted"
grep -q 'plughost_http_connections_cut_total{reason="room"} [1-9]' <<<"$m" || fail "no cuts for room counted"
grep -E 'connections_cut_total' <<<"$m"
if grep -E "ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error" "$tmp/run.log" >/dev/null; then
  fail "the server reported a sanitizer error: $(grep -m1 -E 'Sanitizer|runtime error' "$tmp/run.log")"
fi
echo "1 passed, 0 failed"
