#!/usr/bin/env bash
# Admin token rules and a public bind (issue 9, failure 6): tokens under 128
# bits are refused with a clear config error, a token file readable by group
# or others is refused (as ssh does with keys), and a host listening beyond
# loopback logs a warning and wants the token for every change. The public
# bind runs inside a new network namespace (unshare -rn): only its own
# loopback exists there, so nothing is exposed.
set -euo pipefail
if [ "${1:-}" != inside ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  fail() { echo "FAIL: $*"; exit 1; }
  mkdir -p "$tmp/pk" "$tmp/data"
  cp -r "$PH_EXAMPLES/calc" "$tmp/pk/"
  # a short token in host.ini
  printf '[host]\npackage_dirs = pk\ndata_dir = data\n[auth]\ntoken = a\n' >"$tmp/short.ini"
  set +e; out=$("$PH_BIN" -c "$tmp/short.ini" check 2>&1); rc=$?; set -e
  [ $rc -ne 0 ] || fail "token = a was accepted"
  grep -qF "short.ini:5: 'token' in [auth]: the admin token is too short (1 characters, about 4 bits); use at least 128 bits, i.e. 32 hex characters" <<<"$out" || fail "short token: $out"
  # 31 hex characters: one short; 22 base64 characters: enough
  printf '[auth]\ntoken = %s\n' "$(head -c 31 /dev/zero | tr '\0' f)" >"$tmp/t31.ini"
  set +e; out=$("$PH_BIN" -c "$tmp/t31.ini" check 2>&1); set -e
  grep -qF "too short (31 characters, about 124 bits)" <<<"$out" || fail "31 hex: $out"
  printf '[host]\npackage_dirs = pk\n[auth]\ntoken = Zm9vYmFyYmF6cXV4cXV1eA\n' >"$tmp/b64.ini"
  "$PH_BIN" -c "$tmp/b64.ini" check >/dev/null 2>&1 || fail "a 22-character base64 token was refused"
  # a token file others can read
  printf '[host]\npackage_dirs = pk\ndata_dir = data\n[http]\nlisten = 127.0.0.1:1\n' >"$tmp/host.ini"
  head -c 48 /dev/zero | tr '\0' 7 >"$tmp/data/admin.token"
  chmod 644 "$tmp/data/admin.token"
  set +e; out=$(timeout 20 "$PH_BIN" -c "$tmp/host.ini" run 2>&1); rc=$?; set -e
  [ $rc -ne 0 ] || fail "run started with a world-readable token file"
  grep -qF "admin.token is readable or writable by group or others (mode 0644); the admin token must be private: run chmod 600 $tmp/data/admin.token" <<<"$out" \
    || fail "0644 token file: $out"
  chmod 600 "$tmp/data/admin.token"
  printf 'abc123\n' >"$tmp/data/admin.token"
  set +e; out=$(timeout 20 "$PH_BIN" -c "$tmp/host.ini" run 2>&1); set -e
  grep -qF "admin.token: the admin token is too short (6 characters" <<<"$out" || fail "short token file: $out"
  if ! unshare -rn true 2>/dev/null; then
    echo "SKIP: the public-bind half needs a network namespace (unshare -rn), which this machine refuses"
    exit 77
  fi
  exec unshare -rn bash "$0" inside
fi

# --- inside a network namespace of our own: listen on 0.0.0.0 ---
ip link set lo up
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/run.log" ] && tail -n 20 "$tmp/run.log"; exit 1; }
mkdir -p "$tmp/pk"
cp -r "$PH_EXAMPLES/calc" "$PH_EXAMPLES/notes" "$tmp/pk/"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$PH_BIN" --packages "$tmp/pk" --data-dir "$tmp/data" run --listen "0.0.0.0:$port" >"$tmp/run.log" 2>&1 &
pid=$!
u="http://127.0.0.1:$port"
for _ in $(seq 1 300); do curl -sf -o /dev/null "$u/_/health?ready" && break; sleep 0.1; done
tok=$(cat "$tmp/data/admin.token")
grep -qF "warn  listening on 0.0.0.0:$port, which other machines can reach: every change needs the admin token" "$tmp/run.log" \
  || fail "no warning for a public bind"
J='Content-Type: application/json'
out=$(curl -s -w ' %{http_code}' -X POST -H "$J" "$u/calc/actors/math/add" -d '{"a":2,"b":40}')
[ "${out##* }" = 401 ] || fail "a change without the token: $out"
grep -qF "this host listens beyond loopback, so every change needs the admin token" <<<"$out" || fail "message: $out"
out=$(curl -s -w ' %{http_code}' -X POST -H "$J" "$u/notes/models/note" -d '{"title":"x"}')
[ "${out##* }" = 401 ] || fail "a record created without the token: $out"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$u/notes/models/note")" = 200 ] || fail "reading needs no token"
out=$(curl -s -X POST -H "$J" -H "Authorization: Bearer $tok" "$u/calc/actors/math/add" -d '{"a":2,"b":40}')
[ "$out" = 42 ] || fail "with the token: $out"
echo "1 passed, 0 failed"
