#!/usr/bin/env bash
# Issue 14, item 1 (distribution archives), with the real binary:
# keygen -> pack --sign -> install on another data directory -> serve; then
# every refusal (unsigned, untrusted key, a signature that does not verify, a
# tampered file, path tricks, links, devices, a file not listed or missing, a
# library for another machine, a world-readable secret key), each asserting
# the message a user reads and that nothing was unpacked anywhere.
set -euo pipefail
. "$PH_SOURCE_DIR/tests/support/e2e.sh"
cd "$tmp"

# A package with www/ and wiki/ trees, built by the project (calc).
mkdir -p src
cp -r "$PH_EXAMPLES/calc" src/calc
mkdir -p src/calc/www/css src/calc/wiki
echo '<h1>calc</h1>' >src/calc/www/index.html
echo 'body{}' >src/calc/www/css/site.css
echo '# Calc' >src/calc/wiki/intro.md

out=$("$PH_BIN" keygen --output . alice) || fail "keygen: $out"
grep -q '^alice = ed25519:[A-Za-z0-9+/]\{43\}=$' <<<"$out" || fail "keygen prints the host.ini line: $out"
[ "$(stat -c %a alice.secret)" = 600 ] || fail "the secret key must be 0600"
"$PH_BIN" keygen --output . alice >/dev/null 2>&1 && fail "keygen overwrote alice"
"$PH_BIN" keygen --output . bob >/dev/null

out=$("$PH_BIN" pack --sign alice.secret --output . src/calc) || fail "pack: $out"
[ "$out" = "wrote ./calc-1.0.0.phpkg (signed)" ] || fail "pack says: $out"
list=$(tar xzOf calc-1.0.0.phpkg .plughost/files)
for f in calc.so package.ini www/index.html www/css/site.css wiki/intro.md; do
    grep -q " $f\$" <<<"$list" || fail "$f is not in the signed list: $list"
done
tar tzf calc-1.0.0.phpkg >members.txt
first=$(head -2 members.txt | tr '\n' ' ')
[ "$first" = ".plughost/files .plughost/signature " ] || fail "list and signature come first: $first"

# A world-readable secret key is refused, as ssh refuses such keys.
cp alice.secret loose.secret && chmod 644 loose.secret
out=$("$PH_BIN" pack --sign loose.secret --output . src/calc 2>&1) && fail "pack with a 0644 key"
grep -qF "the secret key loose.secret can be read by its group and others (mode 0644); run chmod 600 loose.secret" \
    <<<"$out" || fail "loose key message: $out"
# the message says what the mode allows: 0666 lets anyone change the key too, 0620 only the group
for m in "666 read and changed by its group and others" "620 changed by its group" "604 read by others"; do
  chmod "${m%% *}" loose.secret
  out=$("$PH_BIN" pack --sign loose.secret --output . src/calc 2>&1) && fail "pack with a 0${m%% *} key"
  grep -qF "the secret key loose.secret can be ${m#* } (mode 0${m%% *}); run chmod 600 loose.secret" \
      <<<"$out" || fail "0${m%% *} key message: $out"
done
# keygen and pack into a missing directory: refused, saying so and how to make it (as ssh-keygen)
out=$("$PH_BIN" keygen --output nodir/keys carol 2>&1) && fail "keygen into a missing directory: $out"
grep -qF "keygen: the output directory nodir/keys does not exist; create it first (mkdir -p nodir/keys) or give another --output" <<<"$out" ||
  fail "keygen into a missing directory: $out"
out=$("$PH_BIN" pack --sign alice.secret --output nodir src/calc 2>&1) && fail "pack into a missing directory: $out"
grep -qF "pack: the output directory nodir does not exist; create it first (mkdir -p nodir) or give another --output" <<<"$out" ||
  fail "pack into a missing directory: $out"
out=$("$PH_BIN" pack --output alice.pub src/calc 2>&1) && fail "pack into a file: $out"
grep -qF "pack: the output alice.pub is not a directory; give a directory" <<<"$out" || fail "pack into a file: $out"
[ ! -e nodir ] && [ ! -e carol.secret ] || fail "a refused keygen or pack wrote something"
# a member name past the 1024 bytes an archive member's name may have: said so (not a bad character)
cp -r src/calc src/long
long=src/long/www/$(printf 'd%.0s' $(seq 1 200))/$(printf 'e%.0s' $(seq 1 200))/$(printf 'f%.0s' $(seq 1 200))
long=$long/$(printf 'g%.0s' $(seq 1 200))/$(printf 'h%.0s' $(seq 1 200))/$(printf 'i%.0s' $(seq 1 50))
mkdir -p "$long" && echo x >"$long/page.html"
out=$("$PH_BIN" pack --output . src/long 2>&1) && fail "pack of a long member name: $out"
grep -qF "/page.html: its path in the package is 1069 bytes, longer than the 1024 bytes an archive member's name may be; shorten it" <<<"$out" ||
  fail "pack of a long member name: $out"
rm -rf src/long

port=$(free_port)
mkdir -p h/packages
cat >h/host.ini <<INI
[host]
package_dirs = packages
data_dir = data
[http]
listen = 127.0.0.1:$port
[trust]
$(cat alice.pub)
INI
start_host -c h/host.ini
wait_ready "http://127.0.0.1:$port"

# Refusals first, while nothing is installed: nothing may appear in packages/ or data/.
nothing_unpacked() {
    [ -z "$(ls -A h/packages)" ] || fail "$1: something was unpacked into packages/: $(ls -A h/packages)"
    ! ls -d h/data/.unpack-* >/dev/null 2>&1 || fail "$1: a staging directory was left in data/"
}
refused() { # NAME ARCHIVE EXPECTED-TEXT
    local got
    got=$("$PH_BIN" install -c h/host.ini "$2" 2>&1) && fail "$1: installed: $got"
    grep -qF -- "$3" <<<"$got" || fail "$1: expected '$3', got: $got"
    nothing_unpacked "$1"
}

mkdir unsigned && "$PH_BIN" pack --output unsigned src/calc >/dev/null
refused unsigned unsigned/calc-1.0.0.phpkg \
    "calc-1.0.0.phpkg is not signed; refused (sign it with plughost pack --sign KEY, or set allow_unsigned = yes in [trust] of host.ini to accept unsigned archives)"

mkdir bobs && "$PH_BIN" pack --sign bob.secret --output bobs src/calc >/dev/null
refused untrusted bobs/calc-1.0.0.phpkg \
    "calc-1.0.0.phpkg is signed by key 'bob', which host.ini does not trust; refused"

# bob's key under alice's name: the name is trusted, the signature does not verify.
sed 's/ bob / alice /' bob.secret >forged.secret && chmod 600 forged.secret
mkdir forged && "$PH_BIN" pack --sign forged.secret --output forged src/calc >/dev/null
refused forged forged/calc-1.0.0.phpkg \
    "calc-1.0.0.phpkg: the signature by 'alice' does not verify: the archive was changed after it was signed"

# Hand-made archives (python's tarfile): members tampered with after signing, and tricks.
cat >craft.py <<'PY'
import hashlib, io, sys, tarfile
src, out, kind = sys.argv[1], sys.argv[2], sys.argv[3]
with tarfile.open(src) as t:
    members = [(m, t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()]
def add(tar, name, data=b"", typ=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name); info.type = typ; info.linkname = link; info.size = len(data) if typ == tarfile.REGTYPE else 0
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data) if typ == tarfile.REGTYPE else None)
files = {m.name: d for m, d in members if m.isfile() and not m.name.startswith(".plughost/")}
sig = [d for m, d in members if m.name == ".plughost/signature"]
def listing(fs, extra=()):
    lines = ["plughost-archive 1", "package calc 1.0.0"]
    for n in sorted(fs):
        lines.append("file %s %d %s %s" % (hashlib.sha256(fs[n]).hexdigest(), len(fs[n]), "755" if n.endswith(".so") else "644", n))
    lines += list(extra)
    return ("\n".join(lines) + "\n").encode()
with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as tar:
    if kind in ("tampered", "grown"):  # signed list kept, package.ini changed (same size, or longer)
        add(tar, ".plughost/files", [d for m, d in members if m.name == ".plughost/files"][0])
        add(tar, ".plughost/signature", sig[0])
        for n in sorted(files):
            d = files[n]
            if n == "package.ini":
                d = d.replace(b"1.0.0", b"1.0.1") if kind == "tampered" else d + b"\n; more\n"
            add(tar, n, d)
        sys.exit(0)
    extra, more = (), []
    fs = dict(files)
    if kind == "dotdot":   extra = ["file %s 1 644 ../evil" % hashlib.sha256(b"x").hexdigest()]
    if kind == "absolute": extra = ["file %s 1 644 /tmp/evil" % hashlib.sha256(b"x").hexdigest()]
    if kind == "ctrl":     extra = ["file %s 1 644 www/a\x1b[2Jb" % hashlib.sha256(b"x").hexdigest()]
    if kind == "symlink":  more = [("www/link", b"", tarfile.SYMTYPE, "/etc/passwd")]
    if kind == "hardlink": more = [("www/hard", b"", tarfile.LNKTYPE, "package.ini")]
    if kind == "device":   more = [("www/dev", b"", tarfile.CHRTYPE, "")]
    if kind == "fifo":     more = [("www/fifo", b"", tarfile.FIFOTYPE, "")]
    if kind == "unlisted": more = [("www/extra.html", b"<p>", tarfile.REGTYPE, "")]
    if kind == "missing":  extra = ["file %s 1 644 www/gone.html" % hashlib.sha256(b"x").hexdigest()]
    if kind == "dotdir":   more = [("www/../../escape.txt", b"x", tarfile.REGTYPE, "")]
    if kind == "biglist":  # a file list over the 4 MiB an archive may hold
        extra = ["file %s 0 644 www/pad/%0200d" % (hashlib.sha256(b"").hexdigest(), i) for i in range(16000)]
    if kind == "longname": fs["www/" + "a" * 1100] = b"x"  # past the 1024 bytes a member name may be
    if kind in ("libabs", "librel"):  # package.ini names a library the archive does not carry
        lib = b"/bin/true" if kind == "libabs" else b"../../../../bin/true"
        fs["package.ini"] = fs["package.ini"].replace(b"[package]\n", b"[package]\nlibrary = " + lib + b"\n", 1)
    if kind == "foreign":  # the library's ELF header says aarch64 (EM_AARCH64 = 183)
        so = bytearray(fs["calc.so"]); so[18] = 183; so[19] = 0; fs["calc.so"] = bytes(so)
    add(tar, ".plughost/files", listing(fs, extra))
    for n in sorted(fs):
        add(tar, n, fs[n])
    for n, d, t, l in more:
        add(tar, n, d, t, l)
PY
craft() { mkdir -p "c-$1" && python3 craft.py "${2:-calc-1.0.0.phpkg}" "c-$1/calc-1.0.0.phpkg" "$1"; }
craft tampered
refused tampered c-tampered/calc-1.0.0.phpkg \
    "calc-1.0.0.phpkg: refused: 'package.ini' does not match its signed SHA-256 (the file was changed after packing: tampered or corrupt)"
craft grown
refused grown c-grown/calc-1.0.0.phpkg \
    "calc-1.0.0.phpkg: refused: 'package.ini' is larger than the "

# The tricks are refused whoever signed them: this host accepts unsigned archives for them.
stop_host
printf 'allow_unsigned = yes\n' >>h/host.ini
start_host -c h/host.ini
wait_ready "http://127.0.0.1:$port"
for k in dotdot absolute symlink hardlink device fifo unlisted missing dotdir foreign biglist longname libabs librel ctrl; do craft $k; done
# a name that would steer the terminal is refused, and quoted escaped
refused ctrl c-ctrl/calc-1.0.0.phpkg 'calc-1.0.0.phpkg: refused: the path '"'"'www/a\x1b[2Jb'"'"' could write outside the package'
grep -q $'\x1b' <<<"$("$PH_BIN" install -c h/host.ini c-ctrl/calc-1.0.0.phpkg 2>&1)" && fail "an ESC from an archive reached the terminal"
refused libabs c-libabs/calc-1.0.0.phpkg "calc-1.0.0.phpkg: refused: its package.ini names the library '/bin/true', which is not a file of the archive; an archive carries its own library"
refused librel c-librel/calc-1.0.0.phpkg "calc-1.0.0.phpkg: refused: its package.ini names the library '../../../../bin/true', which is not a file of the archive"
refused dotdot c-dotdot/calc-1.0.0.phpkg "calc-1.0.0.phpkg: refused: the path '../evil' could write outside the package"
refused absolute c-absolute/calc-1.0.0.phpkg "calc-1.0.0.phpkg: refused: the path '/tmp/evil' could write outside the package"
refused symlink c-symlink/calc-1.0.0.phpkg "calc-1.0.0.phpkg: refused: 'www/link' is a symbolic link; archives hold regular files only"
refused hardlink c-hardlink/calc-1.0.0.phpkg "calc-1.0.0.phpkg: refused: 'www/hard' is a hard link"
refused device c-device/calc-1.0.0.phpkg "calc-1.0.0.phpkg: refused: 'www/dev' is a character device"
refused fifo c-fifo/calc-1.0.0.phpkg "calc-1.0.0.phpkg: refused: 'www/fifo' is a FIFO"
refused unlisted c-unlisted/calc-1.0.0.phpkg "calc-1.0.0.phpkg: refused: 'www/extra.html' is not in its signed file list"
refused missing c-missing/calc-1.0.0.phpkg "calc-1.0.0.phpkg: refused: 'www/gone.html' is in its signed file list but not in the archive"
refused dotdir c-dotdir/calc-1.0.0.phpkg "calc-1.0.0.phpkg: refused: 'www/../../escape.txt' is not in its signed file list"
refused foreign c-foreign/calc-1.0.0.phpkg "calc-1.0.0.phpkg: calc.so"
refused biglist c-biglist/calc-1.0.0.phpkg "calc-1.0.0.phpkg: its file list is too large: "
refused longname c-longname/calc-1.0.0.phpkg "calc-1.0.0.phpkg: refused: the path 'www/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' is 1104 bytes, longer than the 1024 bytes an archive member's name may be"
got=$("$PH_BIN" install -c h/host.ini c-biglist/calc-1.0.0.phpkg 2>&1 || true)
grep -qE "bytes, more than the 4194304 bytes an archive may hold" <<<"$got" || fail "biglist: $got"
# pack refuses what install would: a package whose file list passes 4 MiB
cp -r src/calc src/many
python3 - src/many/www <<'PYM'
import os, sys
d = os.path.join(sys.argv[1], "d" * 200)
os.makedirs(d)
for i in range(9000):
    open(os.path.join(d, "%0240d" % i), "w").close()
PYM
got=$("$PH_BIN" pack --output . src/many 2>&1) && fail "pack of a 4 MiB file list: $got"
grep -qE "src/many: its file list \(9[0-9]{3} files, [0-9]+ bytes\) is larger than the 4194304 bytes an archive may hold" <<<"$got" \
    || fail "pack of a 4 MiB file list: $got"
[ ! -e calc-1.0.0.phpkg.part ] || fail "pack left its part file"
rm -rf src/many
[ ! -e "$tmp/escape.txt" ] && [ ! -e /tmp/evil ] || fail "a trick wrote outside"
got=$("$PH_BIN" install -c h/host.ini c-foreign/calc-1.0.0.phpkg 2>&1 || true)
grep -qi "machine" <<<"$got" || fail "a library for another machine should say so: $got"

# The signed archive installs, loads in the running host and serves, files and all.
out=$("$PH_BIN" install -c h/host.ini calc-1.0.0.phpkg 2>&1) || fail "install: $out"
grep -qF "verified calc-1.0.0.phpkg" <<<"$out" || fail "install says it verified: $out"
grep -qF "installed calc 1.0.0 in" <<<"$out" || fail "install: $out"
nothing=$(ls -d h/data/.unpack-* 2>/dev/null || true)
[ -z "$nothing" ] || fail "the staging directory was left: $nothing"
got=$("$PH_BIN" call -c h/host.ini calc.math.add a=2 b=40) || fail "call: $got"
[ "$got" = 42 ] || fail "calc.math.add after install: $got"
got=$(curl -sf "http://127.0.0.1:$port/calc/css/site.css") || fail "www/css/site.css is not served"
[ "$got" = 'body{}' ] || fail "site.css: $got"
got=$(curl -sf "http://127.0.0.1:$port/calc/wiki/intro.md") || fail "wiki/intro.md is not served"
[ "$got" = '# Calc' ] || fail "intro.md: $got"
cmp h/packages/calc/calc.so src/calc/calc.so || fail "the installed library differs from the packed one"
[ -x h/packages/calc/calc.so ] || fail "the library lost its mode"
echo "e2e_dist: pack, sign, install and serve; 18 refusals and a pack refused, nothing unpacked"
