// Conductor's web console: plain ES module, no build step, nothing loaded from the internet.
const TOKEN_KEY = "conductor.token";
const TERMINAL = new Set(["execution.succeeded", "execution.failed", "execution.cancelled"]);
const NODE_STATE = {
  "node.started": "running", "node.succeeded": "succeeded", "node.failed": "failed",
  "node.retrying": "retrying", "node.skipped": "skipped", "node.cached": "succeeded",
};
const main = document.getElementById("main");

// ---- HTTP and sign-in ---------------------------------------------------------------------

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) throw new Unauthorized("sign in");
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  return { ok: response.ok, status: response.status, body };
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  }
  return node;
}

function showSignIn(message = "") {
  main.replaceChildren(document.getElementById("sign-in-template").content.cloneNode(true));
  document.getElementById("sign-in-error").textContent = message;
  document.getElementById("sign-in").addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value);
    try {
      await api("/v1/executions?limit=1");
    } catch (error) {
      if (!(error instanceof Unauthorized)) throw error;
      sessionStorage.removeItem(TOKEN_KEY);
      showSignIn("That token was refused.");
      return;
    }
    live.restart();
    route();
  });
}

document.getElementById("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  live.restart();
  showSignIn();
});

// ---- the WebSocket: one connection, subscriptions restored with `after` on reconnect --------

class Live {
  constructor() {
    this.handlers = new Set();
    this.wanted = new Map(); // execution id (or "*") -> last seq seen
    this.socket = null;
    this.restart();
  }

  restart() {
    if (this.socket) { this.socket.onclose = null; this.socket.close(); }
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onopen = () => {
      const token = sessionStorage.getItem(TOKEN_KEY);
      if (token) socket.send(JSON.stringify({ op: "auth", token }));
      for (const [id, after] of this.wanted) this.sendSubscribe(id, after);
      setLive(true);
    };
    socket.onmessage = (message) => this.receive(JSON.parse(message.data));
    socket.onclose = () => {
      setLive(false);
      if (this.socket === socket) setTimeout(() => this.restart(), 2000);
    };
  }

  receive(message) {
    if (message.type === "event") {
      const event = message.event;
      if (this.wanted.has(event.execution_id)) this.wanted.set(event.execution_id, event.seq);
      if (TERMINAL.has(event.type)) this.wanted.delete(event.execution_id);
    }
    for (const handler of this.handlers) handler(message);
  }

  sendSubscribe(id, after) {
    const message = id === "*" ? { op: "subscribe_all" } : { op: "subscribe", execution_id: id, after };
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  subscribe(id, after = 0) {
    if (this.wanted.has(id)) return;
    this.wanted.set(id, after);
    this.sendSubscribe(id, after);
  }

  unsubscribe(id) {
    if (!this.wanted.delete(id)) return;
    if (this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(id === "*" ? { op: "unsubscribe", execution_id: "*" } : { op: "unsubscribe", execution_id: id }));
    }
  }

  on(handler) { this.handlers.add(handler); return () => this.handlers.delete(handler); }
}

function setLive(up) {
  const badge = document.getElementById("live");
  badge.textContent = up ? "live" : "offline";
  badge.classList.toggle("off", !up);
}

const live = new Live();
let leavePage = () => {};

// ---- pages ----------------------------------------------------------------------------------

function statusBadge(status) {
  return el("span", { class: `status ${status}`, "data-status": status }, status);
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "";
}

function duration(view) {
  if (!view.started_at) return "";
  const end = view.finished_at || Date.now() / 1000;
  return `${(end - view.started_at).toFixed(1)} s`;
}

async function blueprintsPage() {
  const { body } = await api("/v1/blueprints?limit=200");
  const rows = body.items.map((item) =>
    el("tr", { "data-blueprint": item.id },
      el("td", {}, item.id), el("td", {}, item.name), el("td", {}, `r${item.revision}`),
      el("td", {}, `${item.blueprint.nodes.length} nodes`),
      el("td", {}, el("button", { class: "primary run", onclick: () => runForm(item) }, "Run"))));
  main.replaceChildren(
    el("h2", {}, "Blueprints"),
    rows.length ? el("table", {}, el("tr", {}, ["Id", "Name", "Revision", "Size", ""].map((h) => el("th", {}, h))), rows)
      : el("p", { class: "muted" }, "No stored Blueprints: POST one to /v1/blueprints."),
    el("div", { id: "run-form" }));
}

function inputFor(name, variable) {
  const type = variable.type || "string";
  const value = variable.defaultValue;
  if (type === "boolean") {
    return el("select", { name, "data-type": type },
      el("option", { value: "true", ...(value === true ? { selected: "" } : {}) }, "true"),
      el("option", { value: "false", ...(value !== true ? { selected: "" } : {}) }, "false"));
  }
  if (type === "object" || type === "array") {
    return el("textarea", { name, "data-type": type, rows: 3 }, value === undefined || value === null ? "" : JSON.stringify(value));
  }
  return el("input", { name, "data-type": type, type: type === "number" ? "text" : "text", value: value ?? "" });
}

function readInput(field) {
  const type = field.dataset.type;
  const text = field.value.trim();
  if (text === "") return { skip: true };
  if (type === "number") {
    const number = Number(text);
    if (!Number.isFinite(number)) throw new Error("must be a number");
    return { value: number };
  }
  if (type === "boolean") return { value: text === "true" };
  if (type === "object" || type === "array") {
    let value;
    try { value = JSON.parse(text); } catch { throw new Error(`must be JSON (${type})`); }
    if (type === "array" ? !Array.isArray(value) : (typeof value !== "object" || Array.isArray(value) || value === null)) {
      throw new Error(`must be a JSON ${type}`);
    }
    return { value };
  }
  return { value: text };
}

function runForm(item) {
  const variables = item.blueprint.variables || {};
  const fields = Object.entries(variables).map(([name, variable]) =>
    el("label", { "data-field": name }, `${name} (${variable.type || "string"})`, inputFor(name, variable),
      variable.description ? el("span", { class: "muted" }, variable.description) : "",
      el("p", { class: "field-error", "data-error-for": name })));
  const form = el("form", { class: "card", id: "run" },
    el("h3", {}, `Run ${item.name}`), fields.length ? fields : el("p", { class: "muted" }, "No variables."),
    el("p", { class: "field-error", "data-error-for": "" }),
    el("button", { type: "submit", class: "primary" }, "Start"));
  form.addEventListener("submit", (event) => { event.preventDefault(); start(item, form); });
  document.getElementById("run-form").replaceChildren(form);
}

function fieldError(form, name, message) {
  const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`) || form.querySelector('[data-error-for=""]');
  slot.textContent = slot.textContent ? `${slot.textContent}; ${message}` : message;
}

async function start(item, form) {
  form.querySelectorAll(".field-error").forEach((slot) => { slot.textContent = ""; });
  const inputs = {};
  let valid = true;
  for (const field of form.querySelectorAll("[data-type]")) {
    try {
      const read = readInput(field);
      if (!read.skip) inputs[field.name] = read.value;
    } catch (error) {
      fieldError(form, field.name, `${field.name}: ${error.message}`);
      valid = false;
    }
  }
  if (!valid) return;
  const { ok, body } = await api("/v1/executions", { method: "POST", body: JSON.stringify({ blueprint_id: item.id, inputs }) });
  if (ok) { location.hash = `#/executions/${body.id}`; return; }
  const errors = body?.errors?.length ? body.errors : [{ path: "", message: body?.detail || "refused" }];
  for (const error of errors) {
    const name = String(error.path || "").replace(/^inputs\./, "").split(".")[0];
    fieldError(form, name, error.message);
  }
}

async function executionsPage(params) {
  const filters = el("form", { class: "filters", id: "filters" },
    el("label", {}, "Status", el("select", { name: "status" },
      ["", "queued", "running", "paused", "succeeded", "failed", "cancelled"].map((s) =>
        el("option", { value: s, ...(params.get("status") === s ? { selected: "" } : {}) }, s || "any")))),
    el("label", {}, "Blueprint", el("input", { name: "blueprint_id", value: params.get("blueprint_id") || "" })),
    el("button", { type: "submit" }, "Filter"));
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams([...new FormData(filters)].filter(([, v]) => v));
    location.hash = `#/executions?${query}`;
  });
  const query = new URLSearchParams([...params].filter(([, v]) => v));
  const { body } = await api(`/v1/executions?limit=100&${query}`);
  const table = el("table", { id: "executions" },
    el("tr", {}, ["Execution", "Blueprint", "Status", "Started", "Duration"].map((h) => el("th", {}, h))));
  const rows = new Map();
  const show = (view) => {
    const wantedStatus = params.get("status"), wantedBlueprint = params.get("blueprint_id");
    if ((wantedStatus && view.status !== wantedStatus) || (wantedBlueprint && view.blueprint_id !== wantedBlueprint)) {
      rows.get(view.id)?.remove();
      rows.delete(view.id);
      return;
    }
    const row = el("tr", { "data-execution": view.id },
      el("td", {}, el("a", { href: `#/executions/${view.id}` }, view.id.slice(0, 8))),
      el("td", {}, view.blueprint_id || ""), el("td", {}, statusBadge(view.status)),
      el("td", {}, when(view.started_at || view.created_at)), el("td", {}, duration(view)));
    if (rows.has(view.id)) rows.get(view.id).replaceWith(row);
    else table.firstChild.after(row);
    rows.set(view.id, row);
  };
  const views = new Map(body.items.map((view) => [view.id, view]));
  [...body.items].reverse().forEach(show);
  main.replaceChildren(el("h2", {}, "Executions"), filters, table);
  live.subscribe("*");
  const off = live.on((message) => {
    if (message.type !== "event" || message.event.node_id !== null) return;
    const event = message.event;
    const view = views.get(event.execution_id) || { id: event.execution_id, status: "queued", created_at: event.ts };
    if (event.type === "execution.queued") view.blueprint_id = event.data.blueprint_id;
    if (event.type === "execution.started") view.started_at = event.ts;
    view.status = { "execution.queued": "queued", "execution.started": "running", "execution.paused": "paused",
      "execution.resumed": "running", "execution.succeeded": "succeeded", "execution.failed": "failed",
      "execution.cancelled": "cancelled" }[event.type] || view.status;
    if (TERMINAL.has(event.type)) view.finished_at = event.ts;
    views.set(view.id, view);
    show(view);
  });
  leavePage = () => { off(); live.unsubscribe("*"); };
}

// ---- the execution page: DAG, Gantt timeline, node panel, controls --------------------------

function levels(graph) {
  const byKey = new Map(graph.map((node) => [node.key, node]));
  const level = new Map();
  const depth = (key, seen = new Set()) => {
    if (level.has(key)) return level.get(key);
    if (seen.has(key)) return 0;
    seen.add(key);
    const deps = (byKey.get(key)?.depends_on || []).filter((dep) => byKey.has(dep));
    const value = deps.length ? 1 + Math.max(...deps.map((dep) => depth(dep, seen))) : 0;
    level.set(key, value);
    return value;
  };
  graph.forEach((node) => depth(node.key));
  return level;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

// Nested nodes (a group's, a parallel's, a loop's) have keys "parent/child": the graph shows
// one level at a time, `state.scope` being the container shown ("" for the top level).
function parentOf(key) {
  const at = key.lastIndexOf("/");
  return at < 0 ? "" : key.slice(0, at);
}

function inScope(key, scope) {
  // The node of this level that holds `key` (itself, or the ancestor just under `scope`).
  const prefix = scope ? `${scope}/` : "";
  if (scope && !key.startsWith(prefix)) return null;
  const rest = key.slice(prefix.length);
  const at = rest.indexOf("/");
  return prefix + (at < 0 ? rest : rest.slice(0, at));
}

function hasChildren(state, key) {
  return (state.view.graph || []).some((node) => node.key.startsWith(`${key}/`));
}

function scopedGraph(state) {
  const all = state.view.graph || state.view.nodes.map((n) => ({ key: n.node_id, id: n.node_id, type: "", depends_on: [] }));
  return all.filter((node) => parentOf(node.key) === state.scope).map((node) => ({
    ...node,
    depends_on: [...new Set(node.depends_on.map((dep) => inScope(dep, state.scope)).filter((dep) => dep && dep !== node.key))],
  }));
}

function drawDag(state) {
  const graph = scopedGraph(state);
  const level = levels(graph);
  const columns = new Map();
  for (const node of graph) {
    const column = level.get(node.key);
    columns.set(column, [...(columns.get(column) || []), node]);
  }
  const W = 150, H = 40, GX = 60, GY = 18;
  const place = new Map();
  for (const [column, nodes] of columns) {
    nodes.forEach((node, row) => place.set(node.key, { x: 10 + column * (W + GX), y: 10 + row * (H + GY) }));
  }
  const width = 20 + Math.max(1, columns.size) * (W + GX);
  const height = 20 + Math.max(1, ...[...columns.values()].map((nodes) => nodes.length)) * (H + GY);
  const edges = graph.flatMap((node) => node.depends_on.filter((dep) => place.has(dep)).map((dep) => {
    const a = place.get(dep), b = place.get(node.key);
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    return svg("path", { class: "edge", d: `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}`, "data-edge": `${dep}->${node.key}` });
  }));
  const nodes = graph.map((node) => {
    const { x, y } = place.get(node.key);
    const status = state.status.get(node.key) || "queued";
    const label = node.name || node.id;
    return svg("g", { class: `node ${status}${state.selected === node.key ? " selected" : ""}`, "data-node": node.key, "data-status": status,
      transform: `translate(${x},${y})`, onclick: () => { state.selected = node.key; render(state); } },
      svg("rect", { width: W, height: H, rx: 6 }),
      svg("text", { x: 8, y: 16 }, label.length > 20 ? `${label.slice(0, 19)}…` : label),
      svg("text", { x: 8, y: 32, opacity: 0.85 }, `${node.type} · ${status}${hasChildren(state, node.key) ? " · ▸" : ""}`));
  });
  return svg("svg", { id: "dag", width, height, viewBox: `0 0 ${width} ${height}` }, ...edges, ...nodes);
}

function drawGantt(state) {
  const runs = state.view.nodes.filter((n) => n.started_at);
  if (!runs.length) return el("p", { class: "muted" }, "No node has started yet.");
  const origin = state.view.started_at || Math.min(...runs.map((n) => n.started_at));
  const now = Date.now() / 1000;
  const end = Math.max(...runs.map((n) => n.finished_at || now), origin + 0.001);
  const W = 560, L = 150, R = 14;
  const scale = (t) => L + ((t - origin) / (end - origin)) * (W - L - 10);
  const finished = new Map(state.view.nodes.map((n) => [n.node_id, n.finished_at]));
  const deps = new Map((state.view.graph || []).map((n) => [n.key, n.depends_on]));
  const rows = runs.map((run, i) => {
    const ready = Math.max(origin, ...(deps.get(run.node_id) || []).map((d) => finished.get(d) || origin));
    const stop = run.finished_at || now;
    const title = `${run.node_id}: ${run.duration_ms ?? "…"} ms on ${run.worker || "?"}, attempt ${run.attempts}`;
    return svg("g", { "data-run": run.node_id, transform: `translate(0,${i * R})` },
      svg("title", {}, title),
      svg("text", { x: 0, y: 10 }, run.node_id.slice(0, 22)),
      svg("rect", { class: "wait", x: scale(ready), y: 2, width: Math.max(0, scale(run.started_at) - scale(ready)), height: 10 }),
      svg("rect", { class: `bar ${run.status}`, x: scale(run.started_at), y: 2, width: Math.max(2, scale(stop) - scale(run.started_at)), height: 10 }));
  });
  return svg("svg", { class: "gantt", id: "gantt", width: W, height: runs.length * R + 20 }, ...rows,
    svg("text", { x: L, y: runs.length * R + 14 }, "0 s"),
    svg("text", { x: W - 60, y: runs.length * R + 14 }, `${(end - origin).toFixed(2)} s`));
}

function nodePanel(state) {
  if (!state.selected) return el("p", { class: "muted" }, "Click a node to see its parameters, inputs and output.");
  const key = state.selected;
  const spec = (state.view.graph || []).find((n) => n.key === key) || {};
  const run = state.view.nodes.find((n) => n.node_id === key) || {};
  const inputs = jsonSection(state, key, "inputs", null); // the 409 names the upstream node it waits for
  const output = jsonSection(state, key, "output", "No output (yet).");
  return el("div", { id: "node-panel", "data-node": key },
    el("h3", {}, `${spec.name || spec.id || key} `, statusBadge(state.status.get(key) || "queued")),
    el("p", { class: "muted" }, `${spec.type || ""} · attempts ${run.attempts ?? 0} · worker ${run.worker || "-"} · ${run.duration_ms ?? "-"} ms`),
    hasChildren(state, key) ? el("button", { id: "open-node", onclick: () => { state.scope = key; state.selected = null; render(state); } }, "Show its nodes") : "",
    el("h4", {}, "Parameters"), el("pre", {}, JSON.stringify(spec.parameters || {}, null, 2)),
    run.error ? [el("h4", {}, "Error"), el("pre", { id: "node-error" }, JSON.stringify(run.error, null, 2))] : [],
    el("h4", {}, "Inputs"), inputs,
    el("h4", {}, "Output"), output);
}

// A node's `inputs` or `output` from the API: pretty JSON, a preview cut at 4000 characters,
// and a download link. Fetched once per node state, not on every re-render.
function jsonSection(state, key, what, empty) {
  const section = el("div", { id: `node-${what}` }, el("p", { class: "muted" }, "…"));
  const status = state.status.get(key);
  const cacheKey = `${what}:${key}`;
  let cached = state.outputs.get(cacheKey);
  if (!cached || cached.status !== status) {
    cached = { status, reply: api(`/v1/executions/${state.id}/nodes/${encodeURIComponent(key)}/${what}`) };
    state.outputs.set(cacheKey, cached);
  }
  cached.reply.then(({ ok, body }) => {
    if (!ok) { section.replaceChildren(el("p", { class: "muted" }, empty ?? body?.detail ?? "No inputs (yet).")); return; }
    const text = JSON.stringify(body, null, 2);
    const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: "application/json" })), download: what === "output" ? `${key}.json` : `${key}.${what}.json` }, "download");
    section.replaceChildren(el("pre", { id: `${what}-preview` }, text.length > 4000 ? `${text.slice(0, 4000)}\n…` : text), link);
  });
  return section;
}

async function control(state, command) {
  const { ok, body } = await api(`/v1/executions/${state.id}/${command}`, { method: "POST" });
  state.message = ok ? `${command}: ${body.status}` : body?.detail || `${command} refused`;
  if (command === "retry" && ok) live.subscribe(state.id, state.lastSeq);
  await refresh(state);
}

function render(state) {
  const status = state.view.status;
  const buttons = ["cancel", "pause", "resume", "retry"].map((command) =>
    el("button", { id: `${command}-button`, onclick: () => control(state, command) }, command));
  main.replaceChildren(
    el("h2", {}, `Execution ${state.id.slice(0, 8)} `, el("span", { id: "execution-status" }, statusBadge(status))),
    el("p", { class: "muted" }, `Blueprint ${state.view.blueprint_id || "(inline)"} · created ${when(state.view.created_at)} · ${duration(state.view)}`),
    el("div", { class: "controls" }, buttons, el("span", { class: "message", id: "control-message" }, state.message || "")),
    state.view.error ? el("pre", { id: "execution-error" }, JSON.stringify(state.view.error, null, 2)) : "",
    el("div", { class: "exec-grid" },
      el("div", {}, el("div", { class: "card" },
        el("h3", {}, "Graph", state.scope ? ` · inside ${state.scope} ` : "",
          state.scope ? el("button", { id: "scope-up", onclick: () => { state.scope = parentOf(state.scope); render(state); } }, "up") : ""),
        drawDag(state)),
        el("div", { class: "card" }, el("h3", {}, "Timeline"), drawGantt(state))),
      el("div", { class: "card" }, nodePanel(state))));
}

async function refresh(state) {
  const { ok, body } = await api(`/v1/executions/${state.id}`);
  if (!ok) { main.replaceChildren(el("p", { class: "message" }, body?.detail || "not found")); return false; }
  state.view = body;
  for (const node of body.nodes) state.status.set(node.node_id, node.status);
  render(state);
  return true;
}

async function executionPage(id) {
  const state = { id, view: null, status: new Map(), outputs: new Map(), selected: null, scope: "", lastSeq: 0, message: "" };
  if (!(await refresh(state))) return;
  let pending = null;
  const off = live.on((message) => {
    if (message.type !== "event" || message.event.execution_id !== id) return;
    const event = message.event;
    state.lastSeq = event.seq;
    if (event.node_id && NODE_STATE[event.type]) {
      const settled = event.type === "node.failed" && event.data.settled;
      state.status.set(event.node_id, settled ? "succeeded" : NODE_STATE[event.type]);
    }
    // Timings come from the execution view: re-read it once per burst of events.
    clearTimeout(pending);
    pending = setTimeout(() => refresh(state), TERMINAL.has(event.type) ? 0 : 250);
    render(state);
  });
  live.subscribe(id, 0);
  leavePage = () => { off(); clearTimeout(pending); live.unsubscribe(id); };
}

// ---- routing --------------------------------------------------------------------------------

async function route() {
  leavePage();
  leavePage = () => {};
  const [path, query] = (location.hash.slice(1) || "/executions").split("?");
  const params = new URLSearchParams(query || "");
  try {
    document.getElementById("sign-out").hidden = !sessionStorage.getItem(TOKEN_KEY);
    if (path === "/blueprints") await blueprintsPage();
    else if (path.startsWith("/executions/")) await executionPage(decodeURIComponent(path.slice(12)));
    else await executionsPage(params);
  } catch (error) {
    if (error instanceof Unauthorized) showSignIn();
    else main.replaceChildren(el("p", { class: "message" }, String(error)));
  }
}

window.addEventListener("hashchange", route);
route();
