#!/usr/bin/env bash
# The host's HTTP/1.1 engine (host/httpd.c) against malformed and unusual
# requests, written byte by byte over raw sockets (curl would correct them):
# every refusal is the documented JSON error body with its status, its
# header block is sent once, and the connection closes after it (a request
# pipelined behind a refused one is not answered). Also what must work:
# pipelining, keep-alive, HTTP/1.0, Expect: 100-continue, chunked bodies,
# HEAD, a path with '//' (404 with a hint).
set -euo pipefail
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/run.log" ] && tail -n 20 "$tmp/run.log"; exit 1; }
mkdir -p "$tmp/pk"
cp -r "$PH_EXAMPLES/calc" "$PH_EXAMPLES/notes" "$tmp/pk/"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$tmp/host.ini" <<INI
[host]
package_dirs = pk
data_dir = data
[http]
listen = 127.0.0.1:$port
max_body = 65536
INI
"$PH_BIN" -c "$tmp/host.ini" run >"$tmp/run.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do curl -sf -o /dev/null "http://127.0.0.1:$port/_/health?ready" && break; sleep 0.1; done

python3 - "$port" <<'PY' || fail "see above"
import json, re, socket, sys, time
port = int(sys.argv[1])
H = b"Host: 127.0.0.1\r\n"
J = b"Content-Type: application/json\r\n"
failures = []

def raw(data, timeout=30):
    """Sends data, reads until the server closes (bounded); returns the bytes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out, end = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            b = s.recv(65536)
            if not b:
                return out
            out += b
    except socket.timeout:
        pass
    except ConnectionResetError:
        return out + b"<RESET>"
    s.close()
    return out + b"<OPEN>"

def responses(out):
    """Splits a byte stream into (status, headers, body) by Content-Length."""
    res = []
    while out.startswith(b"HTTP/1.1 "):
        head, _, rest = out.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = [l.split(":", 1) for l in lines[1:]]
        if status == 100:
            res.append((100, hdrs, b""))
            out = rest
            continue
        n = int(next(v for k, v in hdrs if k.lower() == "content-length"))
        res.append((status, hdrs, rest[:n]))
        out = rest[n:]
    return res, out

def refused(name, data, status, code, text):
    out = raw(data)
    rs, rest = responses(out)
    got = re.findall(rb"HTTP/1\.1 \d{3} ", out)
    if len(rs) != 1 or len(got) != 1 or rest not in (b"",):
        failures.append("%s: want one response and a close, got %r" % (name, out[:400]))
        return
    st, hdrs, body = rs[0]
    ctype = [v.strip() for k, v in hdrs if k.lower() == "content-type"]
    if st != status or ctype != ["application/json"]:
        failures.append("%s: status %d %s (want %d JSON): %r" % (name, st, ctype, status, body))
        return
    e = json.loads(body).get("error", {})
    if e.get("code") != code or text not in e.get("message", ""):
        failures.append("%s: error %r (want code %s, message with %r)" % (name, e, code, text))
    if sum(1 for k, _ in hdrs if k.lower() == "content-length") != 1:
        failures.append("%s: the header block repeats: %r" % (name, out[:400]))

add = b"POST /calc/actors/math/add HTTP/1.1\r\n" + H + J
refused("Content-Length: abc", add + b"Content-Length: abc\r\n\r\n{}", 400, "invalid",
        "the request's Content-Length is not one decimal number of bytes")
refused("Content-Length: -1", add + b"Content-Length: -1\r\n\r\n{}", 400, "invalid",
        "the request's Content-Length is not one decimal number of bytes")
refused("Content-Length: 14, 14", add + b"Content-Length: 14, 14\r\n\r\n{\"a\":1,\"b\":22}",
        400, "invalid", "the request's Content-Length is not one decimal number of bytes")
refused("two equal Content-Length", add + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
        400, "invalid", "the request has 2 Content-Length headers; send one")
refused("Transfer-Encoding then Content-Length",
        add + b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n{}", 400, "invalid",
        "the request has both Content-Length and Transfer-Encoding; send one of them")
refused("Transfer-Encoding: gzip", add + b"Transfer-Encoding: gzip\r\n\r\n{}", 501,
        "not_implemented", "the request's Transfer-Encoding is not chunked")
refused("a 40 KiB header", b"GET /_/health HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 40960 +
        b"\r\n\r\n", 431, "headers_too_large",
        "the request's headers are larger than 32768 bytes; send fewer or shorter headers")
refused("a 9 KiB URL", b"GET /notes/models/note?x=" + b"a" * 9216 + b" HTTP/1.1\r\n" + H +
        b"\r\n", 414, "uri_too_long",
        "the request's path and query are longer than 8192 bytes; send the data in a JSON body")
refused("a bare LF", b"GET /_/health HTTP/1.1\n" + b"Host: 127.0.0.1\n\n", 400, "invalid",
        "the request has a line ending in a bare LF; end lines with CRLF")
refused("a bare LF after the request line", b"GET /_/health HTTP/1.1\r\nHost: 127.0.0.1\n\r\n",
        400, "invalid", "the request has a line ending in a bare LF; end lines with CRLF")
refused("a NUL in a header", b"GET /_/health HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", 400,
        "invalid", "the request line or a header holds a NUL byte; send text")
refused("a header name with a space", b"GET /_/health HTTP/1.1\r\n" + H + b"X A: b\r\n\r\n",
        400, "invalid", "a header name holds a space or a character names cannot hold")
refused("a space before the colon", b"GET /_/health HTTP/1.1\r\n" + H + b"X-A : b\r\n\r\n",
        400, "invalid", "a header name holds a space or a character names cannot hold")
refused("an obs-fold line", b"GET /_/health HTTP/1.1\r\n" + H + b"X-A: b\r\n c\r\n\r\n", 400,
        "invalid", "a header line begins with a space or tab (an obsolete folded header)")
refused("HTTP/2.0 in the request line", b"GET /_/health HTTP/2.0\r\n" + H + b"\r\n", 505,
        "version_not_supported", "send HTTP/1.1")
refused("an unknown method", b"BREW /_/health HTTP/1.1\r\n" + H + b"\r\n", 501,
        "not_implemented", "the request method is not one this host knows")
refused("CONNECT", b"CONNECT example.com:443 HTTP/1.1\r\n" + H + b"\r\n", 501, "not_implemented",
        "this host does not switch protocols (Upgrade) or tunnel (CONNECT)")
refused("an absolute-form target", b"GET http://127.0.0.1/_/health HTTP/1.1\r\n" + H + b"\r\n",
        400, "invalid", "the request target must be an absolute path such as /calc/actors/math/add")
refused("a body over max_body (Content-Length)", add + b"Content-Length: 70000\r\n\r\n{", 413,
        "too_large", "the request body (70000 bytes) is larger than the limit of 65536 bytes")
big = b"%x\r\n" % 70000 + b"x" * 70000 + b"\r\n0\r\n\r\n"
refused("a body over max_body (chunked)", add + b"Transfer-Encoding: chunked\r\n\r\n" + big, 413,
        "too_large", "the request body is larger than the limit of 65536 bytes")
refused("two Host headers", b"GET /_/health HTTP/1.1\r\n" + H + b"Host: evil.example\r\n\r\n",
        400, "invalid", "the request has 2 Host headers; send one")
# RFC 9112 3.2: an HTTP/1.1 request names its host, once, validly (HTTP/1.0 may omit it)
refused("HTTP/1.1 without Host", b"GET /_/health HTTP/1.1\r\n\r\n", 400, "invalid",
        "the request is HTTP/1.1 but has no Host header; send Host: with the name or address")
refused("a Host that is no host", b"GET /_/health HTTP/1.1\r\nHost: a b/c\r\n\r\n", 400,
        "invalid", "the request's Host header 'a b/c' is not a host name or address with an "
        "optional port; send Host: name[:port]")
refused("an empty Host", b"GET /_/health HTTP/1.1\r\nHost: \r\n\r\n", 400, "invalid",
        "the request's Host header '' is not a host name or address with an optional port")
refused("a Host with a 6-digit port", b"GET /_/health HTTP/1.1\r\nHost: 127.0.0.1:123456\r\n\r\n",
        400, "invalid", "the request's Host header '127.0.0.1:123456' is not a host name")
# each refusal names its cause: a chunk size, a chunk extension, a Transfer-Encoding as sent
chunked = add + b"Transfer-Encoding: chunked\r\n\r\n"
# a size past the body limit is 413 as soon as its digits say so, however the line is split
# (2^64, and one the parser alone would call too large for 64 bits)
refused("a chunk size of 2^64", chunked + b"10000000000000000\r\n", 413, "too_large",
        "the request body is larger than the limit of 65536 bytes")
refused("a chunk size of 2^64 - 16", chunked + b"fffffffffffffff0\r\n", 413, "too_large",
        "the request body is larger than the limit of 65536 bytes")
refused("a chunk size of 65 digits", chunked + b"0" * 64 + b"2\r\n{}\r\n0\r\n\r\n", 400,
        "invalid", "a chunk size of the chunked body has more than 64 digits")
refused("a 100 KB chunk extension", chunked + b"5;" + b"a" * 100000, 431,
        "chunk_extension_too_long",
        "a chunk extension of the chunked body is longer than 4096 bytes; send chunks without "
        "extensions or with shorter ones")
refused("a chunk size then no ';'", chunked + b"2 x\r\n{}\r\n0\r\n\r\n", 400, "invalid",
        "a chunk size line of the chunked body is malformed; send the size in hex")
refused("a chunk size line ending in a bare LF", chunked + b"2\n{}\r\n0\r\n\r\n", 400,
        "invalid", "a chunk size line of the chunked body ends in a bare LF; end lines with CRLF")
refused("a chunk longer than its size", chunked + b"2\r\n{}XY0\r\n\r\n", 400, "invalid",
        "a chunk of the chunked body is not followed by CRLF (it is longer than its size says)")
for name, te_cl in (("Transfer-Encoding: identity then Content-Length",
                     b"Transfer-Encoding: identity\r\nContent-Length: 2\r\n"),
                    ("Content-Length then Transfer-Encoding: identity",
                     b"Content-Length: 2\r\nTransfer-Encoding: identity\r\n")):
    refused(name, add + te_cl + b"\r\n{}", 501, "not_implemented",
            "the request's Transfer-Encoding is not chunked (it is 'identity', beside a "
            "Content-Length); this host reads only Transfer-Encoding: chunked")
# a chunked body's trailer lines follow the head's rules (a proxy may frame them otherwise)
for name, trailer, text in (
        ("a bare LF", b"X-A: b\n", "a trailer line of the chunked body ends in a bare LF"),
        ("a bare CR", b"X-A: b\rc\r\n", "a trailer line of the chunked body has a CR not followed by LF"),
        ("a NUL", b"X-A: b\x00c\r\n", "a trailer line of the chunked body holds a NUL byte"),
        ("an obs-fold line", b"X-A: b\r\n c\r\n", "a trailer line of the chunked body begins "
         "with a space or tab (an obsolete folded field)"),
        ("a space before the colon", b"X-A : b\r\n", "a trailer name of the chunked body holds a "
         "space or a character names cannot hold"),
        ("40 KiB", b"X-A: " + b"b" * 40960 + b"\r\n", "the chunked body's trailers are larger "
         "than 32768 bytes")):
    refused("a trailer with " + name, chunked + b"2\r\n{}\r\n0\r\n" + trailer + b"\r\n",
            431 if name == "40 KiB" else 400, "headers_too_large" if name == "40 KiB" else "invalid",
            text)
# a request pipelined behind a refused one gets no answer: the connection ends with the refusal
refused("pipelined after a refusal", add + b"Content-Length: abc\r\n\r\n{}" +
        b"GET /_/health HTTP/1.1\r\n" + H + b"\r\n", 400, "invalid",
        "the request's Content-Length is not one decimal number of bytes")

# what must work
def ok(name, data, want):
    """want: list of (status, body) in order; the server closes after the last."""
    out = raw(data)
    rs, rest = responses(out)
    got = [(st, body) for st, _, body in rs]
    if got != want or rest != b"":
        failures.append("%s: got %r rest %r (want %r)" % (name, got, rest[:200], want))
    return rs

body = b'{"a":2,"b":40}'
one = add + b"Content-Length: %d\r\n\r\n" % len(body) + body
close = add + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
ok("pipelined three", one + one + close, [(200, b"42\n")] * 3)
ok("pipelined, an error between", one + b"GET /notes/models/note/x HTTP/1.1\r\n" + H + b"\r\n" +
   close, [(200, b"42\n"), (404, b'{"error":{"code":"not_found","message":"\'x\' is not a record '
   b'id; ids are positive integers, as returned by POST or listed by GET on the model"}}\n'),
   (200, b"42\n")])
ok("keep-alive HTTP/1.0", b"POST /calc/actors/math/add HTTP/1.0\r\n" + H + J +
   b"Content-Length: %d\r\n\r\n" % len(body) + body, [(200, b"42\n")])
ok("Expect: 100-continue", add + b"Expect: 100-continue\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body, [(100, b""), (200, b"42\n")])
ok("chunked body", add + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
   b"6\r\n{\"a\":2\r\n8\r\n,\"b\":40}\r\n0\r\n\r\n", [(200, b"42\n")])
ok("chunked body with extensions and a trailer", add + b"Transfer-Encoding: chunked\r\n"
   b"Connection: close\r\n\r\n6 ;a=b\r\n{\"a\":2\r\n8;c\r\n,\"b\":40}\r\n0\r\nX-T: 1\r\n\r\n",
   [(200, b"42\n")])
# whitespace after a field value is not part of it (RFC 9110 5.5)
ok("whitespace after values", b"POST /calc/actors/math/add HTTP/1.1\r\nHost: 127.0.0.1\t \r\n"
   b"Content-Type: application/json \r\nTransfer-Encoding: chunked \r\nConnection: close\t\r\n\r\n"
   b"e\r\n" + body + b"\r\n0\r\n\r\n", [(200, b"42\n")])
ok("HTTP/1.0 without Host", b"GET /_/health HTTP/1.0\r\n\r\n",
   [(200, b'{"status":"ok","ready":true,"instances":{"calc":"running","notes":"running"}}\n')])
out = raw(b"HEAD /_/health HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
if not re.match(rb"HTTP/1\.1 200 OK\r\n(.*\r\n)*Content-Length: [1-9]\d*\r\n(.*\r\n)*\r\n$", out):
    failures.append("HEAD: want a 200 head with the GET's length and no body, got %r" % out)
out = raw(b"GET //notes//models/note HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
rs, _ = responses(out)
e = json.loads(rs[0][2])["error"] if rs else {}
if not rs or rs[0][0] != 404 or "the path //notes//models/note has an empty segment ('//'); " \
        "write each '/' once" not in e.get("message", ""):
    failures.append("'//' in a path: %r" % out[:400])
# one route table (http.c) answers dispatch, 405 Allow, the 404 hint and the OpenAPI paths
def one(data):
    rs, _ = responses(raw(data))
    return rs[0] if rs else (0, [], b"")
st, hdrs, b = one(b"POST /_/health HTTP/1.1\r\n" + H + J + b"Content-Length: 0\r\n"
                  b"Connection: close\r\n\r\n")
allow = [v.strip() for k, v in hdrs if k.lower() == "allow"]
if st != 405 or allow != ["GET, HEAD"]:
    failures.append("POST /_/health: %d %r %r" % (st, allow, b))
st, hdrs, b = one(b"GET /_/reload/calc HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
allow = [v.strip() for k, v in hdrs if k.lower() == "allow"]
if st != 405 or allow != ["POST"]:
    failures.append("GET /_/reload/calc: %d %r %r" % (st, allow, b))
st, _, b = one(b"GET /_/nothing HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
served = ("GET /_/health, GET /_/metrics, GET /_/openapi.json, GET /_/packages, GET /_/hooks/{endpoint}, "
          "POST /_/reload/{name}, POST /_/disable/{name}, POST /_/unload/{name}, "
          "POST /_/enable/{name}, POST /_/remove/{name}, POST /_/purge/{name}")
if st != 404 or json.loads(b)["error"]["message"] != \
        "no host endpoint '/_/nothing'; the host serves " + served:
    failures.append("GET /_/nothing: %d %r" % (st, b))
st, _, b = one(b"GET /_/openapi.json HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
doc = json.loads(b) if st == 200 else {"paths": {}}
ops = ", ".join("%s %s" % (m.upper(), p) for p, item in doc["paths"].items() if p.startswith("/_/")
                for m in item)
if ops != served:
    failures.append("OpenAPI host paths %r differ from the routes served %r" % (ops, served))
# A chunked body's trailers are dropped, never request headers: a trailer read as a header
# used to run on into the previous request's bytes (a secret of another request leaked).
secret = b"SECRET-TOKEN-" * 8
out = raw(b"GET /_/health HTTP/1.1\r\n" + H + b"X-Secret: " + secret + b"\r\n\r\n"
          b"POST /calc/actors/math/add HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
          b"Connection: close\r\n\r\n2\r\n{}\r\n0\r\nContent-Type: x\r\nHost: evil.example\r\n\r\n")
rs, _ = responses(out)
if b"SECRET" in out.split(b"\r\n\r\n", 1)[1].split(b"HTTP/1.1", 1)[-1] or len(rs) != 2 or rs[1][0] != 415:
    failures.append("trailers: %r" % out[-400:])
elif b"(got none)" not in rs[1][2]:
    failures.append("a trailer was read as the Content-Type: %r" % rs[1][2])
# Transfer-Encoding: one header, exactly chunked (two lines are one list to a proxy)
st, _, b = one(b"POST /calc/actors/math/add HTTP/1.1\r\n" + H + J + b"Transfer-Encoding: chunked\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
if st != 400 or b"2 Transfer-Encoding headers" not in b:
    failures.append("two Transfer-Encoding lines: %d %r" % (st, b))
st, _, b = one(b"POST /calc/actors/math/add HTTP/1.1\r\n" + H + J + b"Transfer-Encoding: identity, chunked\r\n"
               b"\r\n2\r\n{}\r\n0\r\n\r\n")
if st != 501 or b"is not chunked" not in b:
    failures.append("Transfer-Encoding: identity, chunked: %d %r" % (st, b))
# a Content-Type that is not UTF-8 is quoted masked in the 415, not a silent close
st, _, b = one(b"POST /calc/actors/math/add HTTP/1.1\r\n" + H + b"Content-Type: app\xff\xfflication/x\r\n\r\n")
if st != 415 or b"(got app??lication/x)" not in b:
    failures.append("a Content-Type not UTF-8: %d %r" % (st, b))
# the server answers normally afterwards
out = raw(b"GET /_/health HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
if not out.startswith(b"HTTP/1.1 200 OK\r\n"):
    failures.append("health after the hostile requests: %r" % out[:200])
for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
PY
if grep -E "ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error" "$tmp/run.log" >/dev/null; then
  fail "the server reported a sanitizer error: $(grep -m1 -E 'Sanitizer|runtime error' "$tmp/run.log")"
fi
echo "1 passed, 0 failed"
