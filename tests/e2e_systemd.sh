#!/usr/bin/env bash
# systemd's Type=notify protocol on the real binary, with NOTIFY_SOCKET
# pointing at a socket of this test: READY=1 only once the listener is open
# and every instance is up (a package whose start() takes 1.5 s), WATCHDOG=1
# at half the WATCHDOG_USEC interval, RELOADING=1 then READY=1 around
# SIGHUP, STOPPING=1 on SIGTERM; and `systemd-analyze verify` accepts the
# shipped unit.
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
sed "s|/usr/bin/plughost|$PH_BIN|" "$PH_SOURCE_DIR/dist/systemd/plughost.service" >"$tmp/plughost.service"
out=$(systemd-analyze verify --man=no "$tmp/plughost.service" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
echo "  systemd-analyze verify accepts dist/systemd/plughost.service"

build_pkg "$tmp/pk" slowstart containment/slowstart.c
port=$(free_port)
python3 - "$PH_BIN" "$tmp" "$port" <<'PY' || fail "notify protocol"
import os, signal, socket, subprocess, sys, time, urllib.request
bin_, tmp, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
path = os.path.join(tmp, "notify.sock")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(0.05)
env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000", PH_SLOW_MS="1500")
t0 = time.monotonic()
p = subprocess.Popen([bin_, "--packages", f"{tmp}/pk", "--data-dir", f"{tmp}/data", "run",
                      "--listen", f"127.0.0.1:{port}"], env=env,
                     stdout=open(f"{tmp}/run.log", "w"), stderr=subprocess.STDOUT)
got = []  # (seconds since start, message)

def pump(until, want=None):
    """Reads messages until `want` appears in one (returns it) or the time is up."""
    while time.monotonic() - t0 < until:
        try:
            m = s.recv(4096).decode()
        except socket.timeout:
            continue
        got.append((time.monotonic() - t0, m))
        if want and want in m.split("\n"):
            return m
    return None

def ready_now():
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_/health?ready", timeout=2) as r:
            return r.status == 200
    except Exception:
        return False

def fail(msg):
    print("FAIL:", msg, "\nmessages:", got)
    p.kill()
    sys.exit(1)

if not pump(30, "READY=1"):
    fail("no READY=1 within 30 s")
t_ready = got[-1][0]
if not ready_now():
    fail("READY=1 came before /_/health?ready answered 200")
if t_ready < 1.4:
    fail(f"READY=1 after {t_ready:.2f} s, before the slow instance had started (1.5 s)")
if not any(m.startswith("STATUS=serving 1 instance(s) on http://127.0.0.1:") for _, m in got
           for m in m.split("\n")):
    fail("READY=1 without its STATUS=serving line")
pump(t_ready + 1.0)
dogs = [t for t, m in got if "WATCHDOG=1" in m.split("\n") and t > t_ready]
if len(dogs) < 3:
    fail(f"{len(dogs)} WATCHDOG=1 in the second after READY (interval 0.4 s: want >= 3)")
if not any("WATCHDOG=1" in m for t, m in got if t < t_ready):
    fail("no WATCHDOG=1 while the instances were starting")
print(f"  READY=1 after {t_ready:.2f} s (slow start 1.5 s), health ready; "
      f"{len(dogs)} WATCHDOG=1 in the next second")
p.send_signal(signal.SIGHUP)
m = pump(time.monotonic() - t0 + 10, "RELOADING=1")
if not m or not any(l.startswith("MONOTONIC_USEC=") for l in m.split("\n")):
    fail("SIGHUP: no RELOADING=1 with MONOTONIC_USEC")
if not pump(time.monotonic() - t0 + 10, "READY=1"):
    fail("SIGHUP: no READY=1 after RELOADING=1")
print("  SIGHUP: RELOADING=1 (with MONOTONIC_USEC) then READY=1")
p.send_signal(signal.SIGTERM)
if not pump(time.monotonic() - t0 + 10, "STOPPING=1"):
    fail("SIGTERM: no STOPPING=1")
if p.wait(timeout=30) != 0:
    fail(f"exit status {p.returncode} after SIGTERM")
print("  SIGTERM: STOPPING=1, exit 0")
PY
echo "1 passed, 0 failed"
