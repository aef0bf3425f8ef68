#!/usr/bin/env bash
# The main paths of the real binary under valgrind: no leaks, no invalid
# accesses. Skipped (exit 0 with a note) only where valgrind is absent or
# the binary was built with sanitizers (they cannot run together).
set -euo pipefail
if ! command -v valgrind >/dev/null; then
  echo "valgrind not installed: skipped"; exit 77
fi
if [ "${PH_SANITIZE:-0}" = 1 ]; then
  echo "sanitizer build: valgrind check skipped (the ASan run covers it)"; exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
vg=(valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99
    --suppressions=/dev/null)
run() {
  local expect=$1; shift
  local out
  set +e
  out=$("${vg[@]}" "$PH_BIN" --data-dir "$tmp/data" --packages "$PH_EXAMPLES" --log-level error "$@" 2>&1)
  local rc=$?
  set -e
  if [ "$rc" = 99 ]; then echo "valgrind found errors in: plughost $*"; echo "$out"; exit 1; fi
  if [ "$rc" != "$expect" ]; then echo "plughost $* exited $rc, expected $expect"; echo "$out"; exit 1; fi
  echo "ok: plughost $* -> $(echo "$out" | tail -n 1)"
}
run 0 call --local calc.math.add a=2 b=40
run 0 call --local 'calc.math.stats' '{"numbers":[1,2,3]}'
run 0 call --local calc.text.upper text=hi
run 1 call --local calc.math.divide a=1 b=0
run 1 call --local calc.math.add a=1
run 0 call --local hello.hello.greet name=valgrind
run 0 check
