# Shared setup of the end-to-end shell tests (source it after `set -euo pipefail`):
#   tmp         a fresh directory, removed at exit with any host started by start_host
#   fail MSG    prints FAIL: MSG and the end of $tmp/run.log, exits 1
#   free_port   an unused TCP port on 127.0.0.1
#   start_host ARGS...   runs "$PH_BIN" ARGS... run, logging to $tmp/run.log; sets pid
#   wait_ready URL [TRIES]   waits (0.1 s a try, 100 by default) for URL/_/health?ready
#   stop_host   stops the host started last and waits for it
#   build_pkg DIR NAME SOURCE [CFLAGS...]   compiles tests/SOURCE as package NAME
#               1.0.0 (or $PH_PKG_VERSION) into DIR/NAME/NAME.so, beside a minimal package.ini
tmp=$(mktemp -d)
pid=
e2e_cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true # the host writes its build store at a clean stop
  rm -rf "$tmp"
}
trap e2e_cleanup EXIT
fail() {
  echo "FAIL: $*"
  [ -f "$tmp/run.log" ] && tail -"${E2E_LOG_LINES:-5}" "$tmp/run.log"
  exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_host() {
  "$PH_BIN" "$@" run >"$tmp/run.log" 2>&1 &
  pid=$!
}
wait_ready() {
  for _ in $(seq 1 "${2:-300}"); do curl -sf -o /dev/null "$1/_/health?ready" && return 0; sleep 0.1; done
  fail "the host at $1 did not get ready"
}
stop_host() {
  [ -n "$pid" ] || return 0
  kill "$pid"
  wait "$pid" || true
  pid=
}
build_pkg() {
  local dir=$1 name=$2 src=$3 ver=${PH_PKG_VERSION:-1.0.0}
  shift 3
  mkdir -p "$dir/$name"
  printf '[package]\nname = %s\nversion = %s\n' "$name" "$ver" >"$dir/$name/package.ini"
  cc -std=c11 -shared -fPIC -fvisibility=hidden -I"$PH_SOURCE_DIR/sdk/include" \
    -DPH_PACKAGE_NAME="\"$name\"" -DPH_PACKAGE_VERSION="\"$ver\"" "$@" \
    -o "$dir/$name/$name.so" "$PH_SOURCE_DIR/tests/$src" || fail "cc $name"
}
