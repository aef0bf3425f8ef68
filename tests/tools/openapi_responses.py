#!/usr/bin/env python3
"""Validates every response of a running host against its own /_/openapi.json.

For each path and verb of the served document it builds a request from the
document alone (path parameters, request body from the schema), sends it,
picks the response schema for the status it got (or "default") and checks
the body with a JSON Schema 2020-12 validator (python3-jsonschema, as
OpenAPI 3.1 uses that dialect). Management operations run last, on the
instance named by --manage. Prints one line per failure and a summary;
exits 1 on any failure.

    openapi_responses.py BASE_URL TOKEN_FILE [--manage INSTANCE]
"""
import json
import sys
import urllib.error
import urllib.request

from jsonschema import Draft202012Validator

BASE, TOKEN = sys.argv[1], open(sys.argv[2]).read().strip()
MANAGE = sys.argv[sys.argv.index("--manage") + 1] if "--manage" in sys.argv else None


def send(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + TOKEN)
    if method in ("POST", "PATCH", "PUT", "DELETE"):
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


DOC = json.loads(send("GET", "/_/openapi.json")[2])


def resolve(schema):
    while isinstance(schema, dict) and "$ref" in schema:
        node = DOC
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def sample(schema, depth=0):
    """A value the schema accepts, the plainest one."""
    s = resolve(schema)
    if "allOf" in s:
        out = {}
        for sub in s["allOf"]:
            v = sample(sub, depth + 1)
            if isinstance(v, dict):
                out.update(v)
        for name in s.get("required", []):
            out.setdefault(name, 1)
        return out
    if "oneOf" in s:
        return sample(s["oneOf"][0], depth + 1)
    t = s.get("type")
    if isinstance(t, list):
        t = next(x for x in t if x != "null")
    if t == "object":
        props = s.get("properties", {})
        return {n: sample(props.get(n, {}), depth + 1) for n in s.get("required", [])}
    if t == "array":
        return []
    if t == "integer":
        return max(1, s.get("minimum", 1))
    if t == "number":
        return 1.5
    if t == "boolean":
        return True
    if t == "string":
        return "2024-05-01T12:00:00Z" if s.get("format") == "date-time" else "x"
    if t == "null":
        return None
    return 1  # any JSON value


def response_schema(op, status):
    rs = op.get("responses", {})
    r = resolve(rs.get(str(status)) or rs.get("default") or {})
    return r.get("content", {})


def validator(schema):
    root = dict(schema)
    root["components"] = DOC["components"]
    return Draft202012Validator(root)


checked, failures, statuses = 0, [], {}


def check(verb, path, op, status, ctype, body):
    global checked
    content = response_schema(op, status)
    where = f"{verb.upper()} {path} -> {status}"
    if not content:
        failures.append(f"{where}: the document declares no response for this status")
        return
    media = ctype.split(";")[0].strip()
    if media not in content:
        failures.append(f"{where}: served {media or 'no content type'}, documented {list(content)}")
        return
    schema = content[media].get("schema", {})
    value = body.decode("utf-8", "replace")
    if media == "application/json":
        try:
            value = json.loads(body)
        except ValueError as e:
            failures.append(f"{where}: not JSON: {e}")
            return
    errors = sorted(validator(schema).iter_errors(value), key=lambda e: list(e.path))
    for e in errors[:3]:
        failures.append(f"{where}: {'/'.join(map(str, e.path)) or '(body)'}: {e.message}")
    checked += 1
    statuses[status] = statuses.get(status, 0) + 1


def new_record(collection, op_post):
    body = sample(op_post["requestBody"]["content"]["application/json"]["schema"])
    status, _, out = send("POST", collection, body)
    return json.loads(out).get("id") if status == 201 else None


paths = DOC["paths"]
manage = []
for path, item in paths.items():
    for verb, op in item.items():
        if path.startswith("/_/") and verb == "post":
            manage.append((path, verb, op))
            continue
        url = path
        if "{id}" in path:
            coll = path.rsplit("/", 1)[0]
            rid = new_record(coll, paths[coll]["post"]) if "post" in paths.get(coll, {}) else None
            url = path.replace("{id}", str(rid if rid is not None else 1))
        body = None
        if "requestBody" in op:
            body = sample(op["requestBody"]["content"]["application/json"]["schema"])
        status, ctype, out = send(verb.upper(), url, body)
        check(verb, url, op, status, ctype, out)
# management last: each changes what runs; end with the instance enabled again
order = ["reload", "disable", "enable", "unload", "enable", "remove"]
for name in order:
    for path, verb, op in manage:
        if MANAGE and path == f"/_/{name}/{{name}}":
            url = path.replace("{name}", MANAGE)
            status, ctype, out = send("POST", url, {})
            check(verb, url, op, status, ctype, out)
    # and one refused operation: its error body is documented too
status, ctype, out = send("POST", "/_/reload/no-such-package", {})
check("post", "/_/reload/no-such-package", paths["/_/reload/{name}"]["post"], status, ctype, out)

for f in failures:
    print("FAIL:", f)
operations = sum(len(v) for v in paths.values())
by_status = ", ".join(f"{n} x {st}" for st, n in sorted(statuses.items()))
print(f"{checked} responses validated against /_/openapi.json ({operations} operations on "
      f"{len(paths)} paths; {by_status}), {len(failures)} failures")
sys.exit(1 if failures or checked == 0 else 0)
