#!/usr/bin/env bash
# systemd's Type=notify protocol on the real binary, with NOTIFY_SOCKET
# pointing at a socket of this test: READY=1 only once the listener is open
# and every instance is up (a package whose start() takes 1.5 s), WATCHDOG=1
# at half the WATCHDOG_USEC interval, RELOADING=1 then READY=1 around
# SIGHUP (a failed one said in STATUS=), STOPPING=1 on SIGTERM, a SIGTERM
# during start-up acted on between instances; and `systemd-analyze verify`
# accepts the shipped unit.
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
sed "s|/usr/bin/plughost|$PH_BIN|" "$PH_SOURCE_DIR/dist/systemd/plughost.service" >"$tmp/plughost.service"
out=$(systemd-analyze verify --man=no "$tmp/plughost.service" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
echo "  systemd-analyze verify accepts dist/systemd/plughost.service"

build_pkg "$tmp/pk" slowstart containment/slowstart.c
port=$(free_port)
for n in slowa slowb slowc; do build_pkg "$tmp/pk3" "$n" containment/slowstart.c; done
printf '[host]\npackage_dirs = pk3\ndata_dir = data3\n[http]\nlisten = 127.0.0.1:%s\n' "$(free_port)" >"$tmp/h3.ini"
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

# SIGTERM during start-up: acted on between instances (three whose start() takes 2 s each):
# no READY=1, the instances that started are stopped, exit 0. A SIGHUP with a broken host.ini
# says so in STATUS= (first line of the reason).
def run(ini, slow_ms, log):
    env = dict(os.environ, NOTIFY_SOCKET=path, PH_SLOW_MS=str(slow_ms))
    return subprocess.Popen([bin_, "-c", ini, "run"], env=env, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT)

def fail_log(msg, log):
    print("FAIL:", msg, "\nmessages:", got, "\nlog:", open(log).read()[-2000:])
    sys.exit(1)

log = f"{tmp}/run3.log"
p = run(f"{tmp}/h3.ini", 2000, log)
t_end = time.monotonic() + 60  # the first instance is starting: its line is in the log
while "starting slowa" not in open(log).read() and time.monotonic() < t_end and p.poll() is None:
    time.sleep(0.05)
if "starting slowa" not in open(log).read():
    p.kill()
    fail_log("the first instance never started", log)
p.send_signal(signal.SIGTERM)
try:
    rc = p.wait(timeout=60)
except subprocess.TimeoutExpired:
    p.kill()
    fail_log("no exit within 60 s of SIGTERM", log)
text = open(log).read()
if rc != 0:
    fail_log(f"exit status {rc} after SIGTERM during start-up (documented: 0)", log)
if "start-up interrupted after 1 of 3 instance(s)" not in text or "starting slowc" in text:
    fail_log("the start-up went on after SIGTERM", log)
if pump(time.monotonic() - t0 + 0.5, "READY=1"):
    fail_log("READY=1 after a start-up cut short", log)
if "slowa stopped" not in text:
    fail_log("the instance that started was not stopped", log)
print("  SIGTERM during start-up: stopped after 1 of 3 instances, no READY=1, exit 0")

got.clear()
log = f"{tmp}/run4.log"
p = run(f"{tmp}/h3.ini", 0, log)
if not pump(time.monotonic() - t0 + 60, "READY=1"):
    p.kill()
    fail_log("no READY=1", log)
with open(f"{tmp}/h3.ini", "w") as f:
    f.write("[http]\nlisten = nowhere\n")
p.send_signal(signal.SIGHUP)
m = pump(time.monotonic() - t0 + 30, "RELOADING=1") and pump(time.monotonic() - t0 + 30, "READY=1")
status = [l for l in (m or "").split("\n") if l.startswith("STATUS=")]
if not status or "; reload failed: " not in status[0] or \
        not status[0].endswith("(the previous configuration stays)") or "nowhere" not in status[0]:
    p.kill()
    fail_log(f"a failed SIGHUP is not in STATUS=: {status}", log)
p.send_signal(signal.SIGTERM)
if p.wait(timeout=60) != 0:
    fail_log(f"exit {p.returncode}", log)
print(f"  a failed SIGHUP: {status[0]}")
PY
echo "1 passed, 0 failed"
