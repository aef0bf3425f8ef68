// The package manager page: plain JavaScript, no framework. It reads the
// host through pkgmgr's actor (packages.overview, every 2 s) and changes it
// through the admin methods of the same actor with the admin token, which
// it asks for once and keeps in sessionStorage (this tab only).
"use strict";
const base = location.pathname.replace(/\/[^/]*$/, ""); // the mount, e.g. /pkgmgr
const TOKEN_KEY = "plughost-token";
const POLL_MS = 2000;
const $ = id => document.getElementById(id);
let data = null;      // the last overview
let pollTimer = null;

/* ---------- talking to the host ---------- */

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

async function call(method, args, admin) {
  if (admin && !token()) await askToken();
  const headers = { "Content-Type": "application/json" };
  if (token()) headers.Authorization = "Bearer " + token();
  const r = await fetch(base + "/actors/packages/" + method,
                        { method: "POST", headers, body: JSON.stringify(args || {}) });
  let body = null;
  try { body = await r.json(); } catch (e) { /* not JSON: say the status */ }
  if (!r.ok) {
    const err = new Error(body && body.error ? body.error.code + ": " + body.error.message
                                              : r.status + " " + r.statusText);
    err.status = r.status;
    throw err;
  }
  return body;
}

function say(text, ok) {
  const m = $("msg");
  m.textContent = text;
  m.className = "msg " + (ok ? "ok" : "err");
}

/* ---------- dialogs ---------- */

function openDialog(dlg) {
  return new Promise(resolve => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue), { once: true });
    dlg.returnValue = "";
    dlg.showModal();
  });
}

async function askToken() {
  $("token").value = token();
  const v = await openDialog($("token-dlg"));
  if (v === "ok") sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  if (v === "forget") sessionStorage.removeItem(TOKEN_KEY);
  showTokenState();
}

function showTokenState() {
  $("token-btn").textContent = token() ? "Admin token ✓" : "Admin token";
}

// Asks before anything that stops something; resolves true on "Confirm".
async function confirmStop(title, text, okLabel, extra) {
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = okLabel || "Confirm";
  $("confirm-extra").replaceChildren(...(extra ? [extra] : []));
  return (await openDialog($("confirm"))) === "ok";
}

/* ---------- building the page ---------- */

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) if (k != null && k !== false) e.append(k instanceof Node ? k : String(k));
  return e;
}

// A URL from a manifest as an href: a relative path or http(s) only (never javascript: and the like).
const SAFE_REL = /^(\/(?!\/)|\.{1,2}\/|[\w\-.~]+(\/|$))[^\s\\\x00-\x1f]*$/;
const SAFE_HTTP = /^https?:\/\/[^\s\\\x00-\x1f]+$/i;
function safeHref(u, httpOnly) {
  if (typeof u !== "string" || !u) return null;
  return SAFE_HTTP.test(u) || (!httpOnly && SAFE_REL.test(u)) ? u : null;
}

// kind · summary · author · license · url (a link when http(s)): the manifest's metadata, as text.
function metaLine(x) {
  const parts = [];
  if (x.kind) parts.push(el("span", { class: "chip", "data-meta": "kind" }, x.kind));
  if (x.summary) parts.push(el("span", { "data-meta": "summary" }, x.summary));
  if (x.author) parts.push(el("span", { "data-meta": "author" }, "by " + x.author));
  if (x.license) parts.push(el("span", { "data-meta": "license" }, x.license));
  if (x.url) {
    const href = safeHref(x.url, true);
    parts.push(href ? el("a", { href, rel: "noopener noreferrer", "data-meta": "url" }, x.url)
                    : el("span", { "data-meta": "url" }, x.url));
  }
  if (!parts.length) return null;
  return el("div", { class: "small muted meta" }, parts.flatMap((p, i) => i ? [" · ", p] : [p]));
}

function chips(names, empty) {
  if (!names || !names.length) return el("span", { class: "muted" }, empty || "none");
  return el("span", { class: "chips" }, names.map(n => el("span", { class: "chip" }, n)));
}

function stateOf(it) { return it.quarantined ? "quarantined" : it.state; }

function paramsTable(it) {
  const keys = Object.keys(it.parameters || {});
  if (!keys.length) return el("span", { class: "muted" }, "none declared");
  return el("table", { class: "params" }, keys.map(k => {
    const v = it.parameters[k], d = (it.defaults || {})[k];
    return el("tr", {}, el("td", {}, el("code", {}, k)),
              el("td", { class: v !== d ? "changed" : null, title: v !== d ? "default: " + d : "the package's default" }, v));
  }));
}

function modelsText(it) {
  const m = it.data && it.data.models;
  if (!m || !Object.keys(m).length) return el("span", { class: "muted" }, it.data ? "no models" : "no database yet");
  return chips(Object.entries(m).map(([k, n]) => `${k}: ${n} record${n === 1 ? "" : "s"}`));
}

function reloadText(it) {
  if (it.reloads == null) return el("span", { class: "muted" }, "not loaded");
  const parts = [`${it.reloads} reload${it.reloads === 1 ? "" : "s"}`];
  if (it.reload_failures) parts.push(`${it.reload_failures} failed`);
  if (it.build) parts.push("build " + it.build);
  if (it.last_reload) parts.push("last " + it.last_reload.replace("T", " ").replace("Z", " UTC"));
  return el("span", {}, parts.join(" · "),
            it.reload_error ? el("div", { class: "reason" }, "last reload failed: " + it.reload_error) : null);
}

function instanceCard(it) {
  const st = stateOf(it);
  const running = it.state === "running";
  const stopped = ["disabled", "stopped", "failed", "skipped", "declined"].includes(it.state);
  const dl = el("dl", {},
    el("dt", {}, "mount"), el("dd", {}, el("a", { href: it.mount + "/" }, it.mount),
                              it.wiki ? [" · ", el("a", { href: it.mount + "/wiki/" }, "wiki")] : null),
    el("dt", {}, "needs"), el("dd", {}, chips(it.dependencies)),
    el("dt", {}, "needed by"), el("dd", {}, chips(it.dependents)),
    el("dt", {}, "models"), el("dd", { class: "models" }, modelsText(it)),
    el("dt", {}, "parameters"), el("dd", {}, paramsTable(it)),
    el("dt", {}, "reloads"), el("dd", {}, reloadText(it)),
    it.crashes ? [el("dt", {}, "crashes"),
                  el("dd", {}, `${it.crashes.count} in the last ${it.crashes.window_s / 60} min ` +
                               `(quarantined at ${it.crashes.quarantine_at})`)] : null,
    it.data && it.data.path ? [el("dt", {}, "data"), el("dd", {}, el("code", {}, it.data.path))] : null);
  const why = it.reason || null;
  return el("article", { class: "card", "data-instance": it.instance, "data-package": it.package || "" },
    el("div", { class: "card-head" },
      el("div", {}, el("h2", {}, it.instance),
         el("div", { class: "sub" }, it.package ? it.package + (it.version ? " " + it.version : "")
                                                : "its package is not installed",
            it.description ? " — " + it.description : "")),
      el("span", { class: "state " + st }, st)),
    metaLine(it),
    why ? el("div", { class: "reason" }, why) : null,
    it.note ? el("div", { class: "reason note" }, it.note) : null,
    it.reloading ? el("div", { class: "reason note" }, "reloading…") : null,
    dl,
    el("div", { class: "actions" },
      el("button", { type: "button", class: "ghost", "data-act": "reload", disabled: !running, onclick: () => act("reload", it) }, "Reload"),
      running ? el("button", { type: "button", class: "ghost", "data-act": "disable", onclick: () => act("disable", it) }, "Disable")
              : el("button", { type: "button", "data-act": "enable", disabled: !stopped || !it.package, onclick: () => act("enable", it) }, "Enable"),
      el("button", { type: "button", class: "ghost", "data-act": "params", disabled: !it.package,
                     onclick: () => editInstance(it) }, "Parameters…")));
}

function packageRow(p) {
  return el("div", { class: "pkg", "data-package": p.package },
    el("div", { class: "what" }, el("b", {}, p.package), el("span", { class: "muted" }, p.version),
       el("div", { class: "small muted" }, p.description || "", " ", el("code", {}, p.directory)),
       metaLine(p)),
    el("div", {}, chips(p.instances, "no instance")),
    el("div", { class: "actions" },
      el("button", { type: "button", class: "ghost", "data-act": "new-instance", onclick: () => newInstance(p) }, "New instance…"),
      el("button", { type: "button", class: "ghost", "data-act": "remove", onclick: () => removePackage(p) }, "Remove…")));
}

function render() {
  if (!data) return;
  const f = $("filter").value.trim().toLowerCase();
  const shown = data.instances.filter(it => !f ||
    [it.instance, it.package, stateOf(it)].some(s => (s || "").toLowerCase().includes(f)));
  $("instances").replaceChildren(...shown.map(instanceCard));
  $("packages").replaceChildren(...data.packages.map(packageRow));
  // code of stopped builds that still runs (threads, timers a package left behind)
  const left = data.outlived || [];
  $("outlived").hidden = !left.length;
  $("outlived").replaceChildren(...(left.length
    ? [el("b", {}, "Still running after stop():"), el("ul", {}, left.map(t => el("li", {}, t)))] : []));
  const c = data.config || {};
  $("config").textContent = c.path
    ? `New instances and parameters are written to ${c.path}` + (c.writable ? "." : " — which the host cannot write now.")
    : "The host runs without a host.ini (-c FILE): instances and parameters cannot be changed here.";
}

async function refresh() {
  try {
    data = await call("overview");
    render();
    $("live").classList.remove("stale");
    $("live").textContent = "live";
  } catch (e) {
    $("live").classList.add("stale");
    $("live").textContent = "host unreachable";
    if (!data) say(e.message, false);
  }
}

function poll() {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(async () => { await refresh(); poll(); }, POLL_MS);
}

/* ---------- actions ---------- */

async function run(what, fn) {
  try {
    const r = await fn();
    if (r) say(what + ": " + r, true);
  } catch (e) {
    say(e.message, false);
    if (e.status === 401) showTokenState();
  }
  await refresh();
}

async function act(op, it) {
  const name = it.instance;
  if (op === "disable" && !(await confirmStop(`Disable ${name}?`,
      `${name} stops serving at ${it.mount}; calls in flight finish first. Its data is kept and ` +
      `it stays off until you enable it.` + (it.dependents && it.dependents.length
        ? ` Needed by: ${it.dependents.join(", ")} (the host refuses while they run).` : "") +
      (it.package === "pkgmgr" ? " This page is served by it and stops working; enable it again " +
        "with POST /_/enable/" + name + " or `plughost` on the host." : ""), "Disable")))
    return;
  if (op === "reload" && !(await confirmStop(`Reload ${name}?`,
      `The build of ${it.package} on disk replaces the running one: new calls wait while ` +
      `the old build stops. If the new build fails, the old one keeps serving.`, "Reload")))
    return;
  await run(name, async () => (await call(op, { name }, true)).result);
}

function dataLines(r) {
  return (r.data || []).map(d => d.backup ? `${d.instance}: data deleted, backup in ${d.backup}`
                                           : d.path ? `${d.instance}: data kept in ${d.path}`
                                                    : `${d.instance}: ${d.error || d.result}`).join("; ");
}

async function removePackage(p) {
  const keep = el("input", { type: "radio", name: "data", value: "keep", checked: true, id: "rm-keep" });
  const purge = el("input", { type: "radio", name: "data", value: "purge", id: "rm-purge" });
  const extra = el("div", {},
    el("label", { class: "choice" }, keep, el("span", {}, el("b", {}, "Keep the data"), " — reinstalling finds every record.")),
    el("label", { class: "choice" }, purge, el("span", {}, el("b", {}, "Purge the data"),
       " — deleted after a verified backup; the backup's path is shown.")));
  if (!(await confirmStop(`Remove ${p.package} ${p.version}?`,
      `Stops ${p.instances.length ? p.instances.join(", ") : "nothing running"} and deletes ${p.directory}.`,
      "Remove", extra)))
    return;
  await run(p.package, async () => {
    const r = await call("uninstall", { name: p.package, purge: purge.checked }, true);
    const d = dataLines(r);
    return r.result + (d ? " — " + d : "");
  });
}

function readBase64(file) {
  return new Promise((resolve, reject) => {
    const fr = new FileReader();
    fr.onload = () => resolve(String(fr.result).replace(/^data:[^,]*,/, ""));
    fr.onerror = () => reject(new Error("cannot read " + file.name));
    fr.readAsDataURL(file);
  });
}

function installed(r) {
  const states = (r.instances || []).map(i => `${i.instance} ${i.state}${i.reason ? " (" + i.reason + ")" : ""}`);
  const pk = (r.packages || [])[0];
  return `installed ${pk ? pk.package + " " + pk.version : ""}` + (states.length ? ": " + states.join(", ") : "");
}

async function installDialog() {
  $("install-form").reset();
  if ((await openDialog($("install-dlg"))) !== "ok") return;
  const file = $("archive").files[0], path = $("install-path").value.trim();
  if (!file && !path) return say("choose an archive or type a path", false);
  await run(file ? file.name : path, async () => {
    say("installing " + (file ? file.name : path) + "…", true);
    const r = file ? await call("upload", { filename: file.name, data: await readBase64(file) }, true)
                   : await call("install", { path }, true);
    return installed(r);
  });
}

function paramFields(values, defaults) {
  const keys = Object.keys(defaults || {});
  if (!keys.length) return [el("p", { class: "muted small" }, "The package declares no parameters.")];
  return keys.map(k => el("label", {}, el("code", {}, k),
    el("input", { type: "text", "data-param": k, value: values[k] ?? defaults[k], placeholder: "default: " + defaults[k] })));
}

function readParams(current, defaults) {
  const out = {};
  for (const input of $("inst-params").querySelectorAll("input[data-param]")) {
    const k = input.dataset.param, v = input.value;
    if (v === "" || v === defaults[k]) { if (current[k] !== undefined && current[k] !== defaults[k]) out[k] = null; }
    else if (v !== current[k]) out[k] = v;
  }
  return out;
}

async function newInstance(p) {
  $("inst-form").reset();
  $("inst-title").textContent = `New instance of ${p.package}`;
  $("inst-note").textContent = "Added to host.ini as [instance NAME] with its own database and mount, then applied as SIGHUP would.";
  $("inst-names").hidden = false;
  $("inst-params").replaceChildren(...paramFields({}, p.parameters));
  if ((await openDialog($("inst-dlg"))) !== "ok") return;
  const instance = $("inst-name").value.trim(), mount = $("inst-mount").value.trim();
  const parameters = readParams({}, p.parameters);
  for (const k of Object.keys(parameters)) if (parameters[k] === null) delete parameters[k];
  await run(instance, async () => (await call("instance_new", { instance, package: p.package, mount, parameters }, true)).result);
}

async function editInstance(it) {
  $("inst-form").reset();
  $("inst-title").textContent = `Parameters of ${it.instance}`;
  $("inst-note").textContent = "Written to host.ini ([instance " + it.instance + "]) and applied as SIGHUP would: " +
    "the instance restarts with them. An empty field means the package's default.";
  $("inst-names").hidden = true;
  $("inst-params").replaceChildren(...paramFields(it.parameters || {}, it.defaults || {}));
  if ((await openDialog($("inst-dlg"))) !== "ok") return;
  const parameters = readParams(it.parameters || {}, it.defaults || {});
  if (!Object.keys(parameters).length) return say(it.instance + ": nothing changed", true);
  await run(it.instance, async () => (await call("instance_set", { instance: it.instance, parameters }, true)).result);
}

/* ---------- the host's menu (a pkgmgr "menu" method, where the host has one) ---------- */

async function loadMenu() {
  let items;
  try { items = await call("menu"); } catch (e) { return; } // no such method: no menu
  if (items && !Array.isArray(items)) items = items.items || items.menu || [];
  if (!Array.isArray(items) || !items.length) return;
  const groups = new Map();
  for (const i of items) {
    const c = i.category || "";
    if (!groups.has(c)) groups.set(c, []);
    groups.get(c).push(i);
  }
  const nav = $("menu");
  // one group per category: its name, then its items as links (a url that is neither a
  // relative path nor http(s), e.g. javascript:, is shown as plain text, never as a link)
  for (const [cat, list] of groups)
    nav.append(el("span", { class: "group", "data-category": cat },
                  cat ? el("span", { class: "cat" }, cat + ":") : null,
                  list.flatMap((i, n) => {
                    const href = safeHref(i.url), label = i.label || i.url || i.item;
                    const item = href ? el("a", { href, "data-item": i.item || "" }, label)
                                      : el("span", { class: "muted", title: "refused link: " + i.url }, label);
                    return n ? [" ", item] : [item];
                  })));
  nav.hidden = false;
}

/* ---------- start ---------- */

$("token-btn").addEventListener("click", askToken);
$("install-btn").addEventListener("click", installDialog);
$("filter").addEventListener("input", render);
showTokenState();
refresh().then(poll);
loadMenu();
