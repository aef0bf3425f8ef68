#!/usr/bin/env python3
"""Drives the package manager page in headless Chromium through the DevTools
protocol (python3-websocket from Debian), as an administrator would:
token -> install (upload an archive) -> running -> disable -> enable -> remove.
Asserts what the page shows and saves screenshots.

usage: pkgmgr_walk.py CHROMIUM URL ARCHIVE TOKEN SHOTS_DIR PROFILE_DIR
Exit 0 passed, 1 failed, 77 Chromium cannot run here."""
import base64, json, os, subprocess, sys, time, urllib.request

try:
    import websocket  # python3-websocket
except ImportError:
    print("SKIP: python3-websocket is not installed (make deps installs it)")
    sys.exit(77)

browser, url, archive, token, shots, profile = sys.argv[1:7]
os.makedirs(shots, exist_ok=True)
proc = subprocess.Popen([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                         "--disable-extensions", "--remote-debugging-port=0",
                         "--remote-allow-origins=*", "--user-data-dir=" + profile,
                         "--window-size=1280,900", "about:blank"],
                        stdout=subprocess.DEVNULL, stderr=open(profile + ".log", "w"))
ws = None


def done(code, text):
    print(text)
    try:
        proc.terminate()
        proc.wait(10)
    except Exception:
        proc.kill()
    sys.exit(code)


port_file = os.path.join(profile, "DevToolsActivePort")
for _ in range(300):  # 30 s
    if os.path.exists(port_file) and open(port_file).read().strip():
        break
    if proc.poll() is not None:
        done(77, "SKIP: chromium cannot run here: " + open(profile + ".log").read()[-300:])
    time.sleep(0.1)
else:
    done(77, "SKIP: chromium did not open its DevTools port within 30 s")
port = open(port_file).read().split()[0]
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
page = None
for attempt in range(6):  # a busy machine (2 cores, several builds) answers late
    try:
        targets = json.load(direct.open(f"http://127.0.0.1:{port}/json/list", timeout=20))
        page = next((t for t in targets if t["type"] == "page"), None)
    except OSError as e:
        print(f"  DevTools did not answer yet ({e}); retrying")
    if page:
        break
    time.sleep(1)
if not page:
    done(1, "FAIL: Chromium's DevTools listed no page")
ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
next_id = 0


def cdp(method, **params):
    global next_id
    next_id += 1
    ws.send(json.dumps({"id": next_id, "method": method, "params": params}))
    while True:  # events are skipped; bounded by the socket timeout
        msg = json.loads(ws.recv())
        if msg.get("id") == next_id:
            if "error" in msg:
                raise RuntimeError(f"{method}: {msg['error']}")
            return msg.get("result", {})


def js(expr):
    r = cdp("Runtime.evaluate", expression=expr, awaitPromise=True, returnByValue=True)
    if "exceptionDetails" in r:
        raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
    return r["result"].get("value")


def until(expr, what, seconds=45):
    end = time.time() + seconds
    while time.time() < end:
        v = js(expr)
        if v:
            return v
        time.sleep(0.1)
    fail(f"timed out waiting for {what}")


def shot(name):
    png = base64.b64decode(cdp("Page.captureScreenshot", format="png")["data"])
    path = os.path.join(shots, f"pkgmgr-{name}.png")
    open(path, "wb").write(png)
    print(f"  screenshot {path}")


def fail(text):
    try:
        shot("failure")
        print("  page said: " + str(js("document.getElementById('msg').textContent")))
    except Exception:
        pass
    done(1, "FAIL: " + text)


def click(selector):
    ok = js(f"(() => {{ const b = document.querySelector({json.dumps(selector)});"
            " if (!b || b.disabled) return false; b.click(); return true; })()")
    if not ok:
        fail(f"no enabled {selector} to press")


def msg():
    return js("document.getElementById('msg').textContent")


def state(inst):
    return js(f"(() => {{ const c = document.querySelector('[data-instance={json.dumps(inst)}] .state');"
              " return c ? c.textContent : null; })()")


def wait_msg(start, what):
    return until(f"(() => {{ const t = document.getElementById('msg').textContent;"
                 f" return t.startsWith({json.dumps(start)}) ? t : null; }})()", what)


cdp("Page.enable")
cdp("Runtime.enable")
cdp("Page.navigate", url=url)
until("document.readyState === 'complete' && document.querySelectorAll('.card').length > 0",
      "the instances")
if state("pkgmgr") != "running":
    fail(f"pkgmgr is shown {state('pkgmgr')}")
if state("notes") is not None:
    fail("notes is listed before it was installed")
print("  the page lists pkgmgr running")

# The menu: each category's items as links (pkgmgr's own, hello's); no javascript: link.
until("document.querySelectorAll('#menu a').length >= 2", "the menu's links")
links = js("[...document.querySelectorAll('#menu .group')].map(g => [g.dataset.category,"
           " [...g.querySelectorAll('a')].map(a => [a.textContent, a.getAttribute('href')])])")
if links != [["admin", [["Packages", "/pkgmgr/"]]], ["apps", [["Hello", "/hello/"]]]]:
    fail(f"the menu shows {links!r}")
if js("[...document.querySelectorAll('a')].some(a => /^\\s*javascript:/i.test(a.getAttribute('href') || ''))"):
    fail("a javascript: url became a link")
if "Evil" in js("document.getElementById('menu').textContent"):
    fail("the menu lists the item whose url is javascript:")
# The manifest's metadata on the cards: summary, author, license, kind.
meta = js("(() => { const c = document.querySelector('[data-instance=\"pkgmgr\"] .meta');"
          " return c ? c.textContent : null; })()")
if meta != "application · The package manager: install, reload, disable and remove packages · " \
        "by plughost developers · MIT":
    fail(f"pkgmgr's card shows the metadata {meta!r}")
print(f"  menu: {links}; pkgmgr's card: {meta}")

# The admin token, typed once into its dialog (kept in sessionStorage).
click("#token-btn")
until("document.getElementById('token-dlg').open", "the token dialog")
js(f"document.getElementById('token').value = {json.dumps(token)}")
click("#token-ok")
until(f"sessionStorage.getItem('plughost-token') === {json.dumps(token)}",
      "the token kept in sessionStorage", 5)
until("document.getElementById('token-btn').textContent === 'Admin token ✓'", "the token shown set", 5)

# Install: upload the archive made with `plughost pack`.
click("#install-btn")
until("document.getElementById('install-dlg').open", "the install dialog")
doc = cdp("DOM.getDocument")
node = cdp("DOM.querySelector", nodeId=doc["root"]["nodeId"], selector="#archive")["nodeId"]
cdp("DOM.setFileInputFiles", nodeId=node, files=[archive])
shot("1-install-dialog")
click("#install-ok")
said = wait_msg(os.path.basename(archive) + ": installed", "the install message")
if f"{os.path.basename(archive)}: installed notes 2.0.0: notes running" != said:
    fail(f"install said: {said}")
until("(() => { const c = document.querySelector('[data-instance=\"notes\"] .state');"
      " return c && c.textContent === 'running'; })()", "notes running")
summary = js("(() => { const c = document.querySelector('.pkg[data-package=\"notes\"] [data-meta=summary]');"
             " return c ? c.textContent : null; })()")
if summary != "Short textual notes with comments, stored in SQLite":
    fail(f"the notes package row shows the summary {summary!r}")
models = js("document.querySelector('[data-instance=\"notes\"] .models').textContent")
if "note: 0 records" not in models:
    fail(f"notes' models show {models!r}")
print(f"  install: {said}")
shot("2-installed")

# Disable asks first; cancelling changes nothing.
click('[data-instance="notes"] [data-act="disable"]')
until("document.getElementById('confirm').open", "the confirmation")
text = js("document.getElementById('confirm-text').textContent")
if "data is kept" not in text:
    fail(f"the confirmation says {text!r}")
shot("3-confirm-disable")
js("document.querySelector('#confirm button[value=cancel]').click()")
time.sleep(0.5)
if state("notes") != "running":
    fail("cancelling the confirmation disabled notes")
click('[data-instance="notes"] [data-act="disable"]')
until("document.getElementById('confirm').open", "the confirmation")
click("#confirm-ok")
said = wait_msg("notes: ", "the disable message")
if said != "notes: disabled; data kept":
    fail(f"disable said: {said}")
until("(() => { const c = document.querySelector('[data-instance=\"notes\"] .state');"
      " return c && c.textContent === 'disabled'; })()", "notes disabled")
print(f"  disable: {said}")
shot("4-disabled")

js("document.getElementById('msg').textContent = ''")
click('[data-instance="notes"] [data-act="enable"]')
said = wait_msg("notes: ", "the enable message")
if said != "notes: running":
    fail(f"enable said: {said}")
until("(() => { const c = document.querySelector('[data-instance=\"notes\"] .state');"
      " return c && c.textContent === 'running'; })()", "notes running again")
print(f"  enable: {said}")

# A second instance of notes with its own mount and parameter (host.ini), then its parameter edited.
js("document.getElementById('msg').textContent = ''")
click('.pkg[data-package="notes"] [data-act="new-instance"]')
until("document.getElementById('inst-dlg').open", "the new instance dialog")
js("document.getElementById('inst-name').value = 'memo';"
   "document.getElementById('inst-mount').value = '/memo';"
   "document.querySelector('#inst-params [data-param=max_title]').value = '20'")
shot("5-new-instance")
click("#inst-ok")
said = wait_msg("memo: ", "the new instance message")
if said != "memo: written to host.ini; the host applies it now (as on SIGHUP)":
    fail(f"new instance said: {said}")
until("(() => { const c = document.querySelector('[data-instance=\"memo\"] .state');"
      " return c && c.textContent === 'running'; })()", "memo running")
if state("notes") != "running":
    fail("the default instance notes stopped when memo was added")
mount = js("document.querySelector('[data-instance=\"memo\"] dd a').getAttribute('href')")
if mount != "/memo/":
    fail(f"memo's mount link is {mount}")
js("document.getElementById('msg').textContent = ''")
click('[data-instance="memo"] [data-act="params"]')
until("document.getElementById('inst-dlg').open", "the parameters dialog")
if js("document.querySelector('#inst-params [data-param=max_title]').value") != "20":
    fail("the parameters dialog does not show memo's max_title 20")
js("document.querySelector('#inst-params [data-param=max_title]').value = '30'")
click("#inst-ok")
wait_msg("memo: written to host.ini", "the parameters message")
until("(() => { const c = document.querySelector('[data-instance=\"memo\"] .params');"
      " return c && c.textContent.includes('max_title30'); })()", "memo's max_title 30 shown")
print("  new instance memo (/memo, max_title 20), then max_title 30: shown running")

# The page at phone width.
cdp("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2, mobile=True)
time.sleep(0.5)
overflow = js("document.documentElement.scrollWidth > window.innerWidth + 1")
shot("6-phone")
if overflow:
    fail("the page is wider than a 390 px phone screen")
cdp("Emulation.clearDeviceMetricsOverride")

# Remove, keeping the data: the dialog offers keep or purge; the answer names the data's path.
js("document.getElementById('msg').textContent = ''")
click('.pkg[data-package="notes"] [data-act="remove"]')
until("document.getElementById('confirm').open", "the remove confirmation")
if not js("document.getElementById('rm-keep').checked && !!document.getElementById('rm-purge')"):
    fail("the remove dialog does not offer keep (default) and purge")
shot("7-confirm-remove")
click("#confirm-ok")
said = wait_msg("notes: removed", "the remove message")
if not said.startswith("notes: removed; data kept — ") or "notes: data kept in " not in said \
        or "memo: data kept in " not in said or not said.endswith("memo.db"):
    fail(f"remove said: {said}")
until("document.querySelector('[data-instance=\"notes\"] .state').textContent !== 'running'",
      "notes stopped")
print(f"  remove: {said}")
shot("8-removed")
done(0, "  the walk passed")
