#!/usr/bin/env bash
# Hostile files (issue 9, failures 1, 2 and 9) through the real binary:
# host.ini and package.ini lines the old two readers disagreed on, a 584-byte
# ELF whose program-header offset wraps, a misaligned dynamic section, a
# library that is a symlink to /dev/zero, a FIFO or a directory. Each gives
# exit status 1 and one clear message, never a crash or a hang.
set -euo pipefail
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
cd "$tmp"

# Runs the binary with a time limit; sets $rc and $out (stdout and stderr).
ph() {
    set +e
    out=$(timeout 30 "$PH_BIN" "$@" 2>&1)
    rc=$?
    set -e
}
# expect RC TEXT COMMAND...: the exit status and a line of the output, exactly.
expect() {
    local want_rc=$1 want=$2
    shift 2
    ph "$@"
    [ "$rc" = "$want_rc" ] || fail "$* exited $rc, not $want_rc: $out"
    grep -qxF -- "$want" <<<"$out" || fail "$*: expected the line
  $want
in:
$out"
}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- host.ini: the 20-byte file of the issue and its variants (check and run) ----
cr="line contains a carriage return (CR) at column 1 that does not end the line; save the file with LF or CRLF line ends"
printf '[host]\n\r[x=y]\nk = v\n' >h1.ini
[ "$(wc -c <h1.ini)" = 20 ] || fail "h1.ini should be 20 bytes"
printf '[host]\n\r[instance:x]\nk = v\n' >h2.ini
printf '[host]\n \xef\xbb\xbf[a=b]\nk = v\n' >h3.ini
printf ' \xef\xbb\xbf[a=b]\nk = v\n' >h4.ini
printf 'k = v\n[host]\n' >h5.ini
printf '[host]\nreload = n\0o\n' >h6.ini
printf '[auth]\ntoken = 0123456789abcdef0123456789abcdef\n    def\n' >h7.ini
for cmd in check run; do
    expect 1 "plughost: h1.ini:2: $cr" $cmd -c h1.ini
    expect 1 "plughost: h2.ini:2: $cr" $cmd -c h2.ini
    expect 1 "plughost: h3.ini:2: line contains a byte order mark (U+FEFF) at column 2; it is allowed only at the very start of the file; remove it" $cmd -c h3.ini
    expect 1 "plughost: h4.ini:1: line contains a byte order mark (U+FEFF) at column 2; it is allowed only at the very start of the file; remove it" $cmd -c h4.ini
    expect 1 "plughost: h5.ini:1: 'k' is outside any section; put it under one of [host], [http], [limits], [auth], [trust], [provides], [instance NAME]" $cmd -c h5.ini
    expect 1 "plughost: h6.ini:2: line contains a NUL byte; is this a text file?" $cmd -c h6.ini
    expect 1 "plughost: h7.ini:3: expected 'key = value' or '[section]'; a value cannot go on over several lines: write it on one line" $cmd -c h7.ini
done

# ---- package.ini variants: a problem naming file:line, never a wrong message ----
mkdir -p pk
cp -r "$PH_EXAMPLES/hello" pk/
ini=$(cd pk/hello && pwd)/package.ini
cp "$ini" hello.ini
phk() { ph --packages pk --data-dir data --log-level error "$@"; }
bad_manifest() { # TEXT LINE MESSAGE
    printf "$1" >"$ini"
    phk check
    [ "$rc" = 1 ] || fail "check with package.ini '$1' exited $rc: $out"
    grep -qxF -- "  - $ini:$2: $3" <<<"$out" || fail "check: expected '$ini:$2: $3' in: $out"
    phk run --strict --listen "127.0.0.1:$(port)"
    [ "$rc" = 1 ] || fail "run with package.ini '$1' exited $rc: $out"
    grep -qF -- "$ini:$2: $3" <<<"$out" || fail "run: expected '$ini:$2: $3' in: $out"
}
bad_manifest '[package]\nname = hello\n\r[x=y]\nversion = 1.0.0\n' 3 "$cr"
bad_manifest ' \xef\xbb\xbf[package]\nname = hello\nversion = 1.0.0\n' 1 \
    "line contains a byte order mark (U+FEFF) at column 2; it is allowed only at the very start of the file; remove it"
bad_manifest 'name = hello\n[package]\nversion = 1.0.0\n' 1 \
    "'name' is outside any section; put it under one of [package], [requires], [optional], [conflicts], [provides], [parameters], [limits], [endpoint NAME], [hook ENDPOINT [ITEM]]"
bad_manifest '[package]\nname = hello\nversion = 1.0.0\n[package]\nversion = 1.0.1\n' 5 \
    "'version' is set twice in [package] (first on line 3); keep one"
cp hello.ini "$ini"

# ---- the library file ----
so=$(cd pk/hello && pwd)/hello.so
cp "$so" good.so
bad_library() { # MESSAGE (after "package 'hello': "): run --strict and call --local refuse it
    phk run --strict --listen "127.0.0.1:$(port)"
    [ "$rc" = 1 ] || fail "run exited $rc (crash or hang?): $out"
    grep -qF -- "error hello: $1" <<<"$out" || fail "run: expected 'error hello: $1' in: $out"
    grep -qxF "plughost: cannot start: 1 instance(s) could not start and strict mode is on" <<<"$out" ||
        fail "run: no strict-mode refusal in: $out"
    phk call --local hello.hello.greet name=x
    [ "$rc" = 1 ] || fail "call --local exited $rc: $out"
    grep -qF -- "$1" <<<"$out" || fail "call --local: expected '$1' in: $out"
}
# The 584-byte ELF64 header whose program-header offset is 2^64 - 16 (it wrapped the check).
elf() { # PHOFF [PT_TYPE P_OFFSET P_FILESZ [DYN_OFFSET]]
    python3 - "$@" >"$so" <<'EOF'
import struct, sys, platform
a = [int(x) for x in sys.argv[1:]]
machine = 183 if platform.machine() == "aarch64" else 62
b = bytearray(584)
b[0:16] = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
struct.pack_into("<HHIQQQIHHHHHH", b, 16, 3, machine, 1, 0, a[0], 0, 0, 64, 56, 1, 64, 0, 0)
if len(a) > 1:
    struct.pack_into("<IIQQQQQQ", b, 64, a[1], 0, a[2], 0, 0, a[3], a[3], 8)
if len(a) > 4:  # DT_FLAGS_1 = DF_1_NODELETE, then DT_NULL
    struct.pack_into("<qQqQ", b, a[4], 0x6ffffffb, 8, 0, 0)
sys.stdout.buffer.write(b)
EOF
}
rm -f "$so"
elf 18446744073709551600
[ "$(wc -c <"$so")" = 584 ] || fail "the hostile ELF should be 584 bytes"
bad_library "$so is truncated: its program headers lie past the end of the file (584 bytes); wait for the build to finish"
# PT_DYNAMIC at an odd offset (misaligned for UBSan), holding DF_1_NODELETE.
elf 64 2 201 32 201
bad_library "$so is marked NODELETE (linked with -z nodelete): it could never be unloaded, so it cannot be reloaded; build it without -Wl,-z,nodelete"
# PT_LOAD whose offset is near 2^64.
elf 64 1 18446744073709551608 16
bad_library "$so is truncated: a loadable segment ends past the end of the file; wait for the build to finish"

rm -f "$so"
ln -s /dev/zero "$so"
bad_library "package 'hello': library $so is not a regular file (it is a character device); point 'library' in package.ini at the built .so"
rm -f "$so"
mkfifo "$so"
bad_library "package 'hello': library $so is not a regular file (it is a FIFO); point 'library' in package.ini at the built .so"

# Without --strict the host starts and serves the others; the FIFO is reported, not waited on.
cp -r "$PH_EXAMPLES/calc" pk/
p=$(port)
"$PH_BIN" --packages pk --data-dir data --log-level info run --listen "127.0.0.1:$p" >run.log 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$p/_/health?ready" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || fail "host exited: $(cat run.log)"
    sleep 0.1
done
[ "$(curl -s -X POST -H "Content-Type: application/json" "http://127.0.0.1:$p/calc/actors/math/add" -d '{"a":2,"b":40}')" = 42 ] ||
    fail "calc does not answer: $(cat run.log)"
curl -s "http://127.0.0.1:$p/_/packages" | grep -qF "is not a regular file (it is a FIFO)" ||
    fail "/_/packages does not show why hello failed: $(curl -s "http://127.0.0.1:$p/_/packages")"
kill "$pid"
wait "$pid" || true
pid=
grep -qF "error hello: package 'hello': library $so is not a regular file (it is a FIFO)" run.log ||
    fail "no FIFO error in the log: $(cat run.log)"
grep -qF "stopped cleanly" run.log || fail "the host did not stop cleanly: $(cat run.log)"
echo "e2e_hostile_files: ok"
