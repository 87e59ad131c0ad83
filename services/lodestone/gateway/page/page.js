// Lodestone's page for analysts and regulators: plain JavaScript, no build step.
// It only calls the API with the key it was given, so it shows what that key's role may
// see. The key lives in sessionStorage (this tab only) and travels as
// "Authorization: Bearer", never in a URL or a cookie. Text from the API is always set
// as text (textContent), never parsed as HTML.
"use strict";

(() => {
  const KEY = "lodestone.key";
  const POLL_MS = 5000; // without a live stream, the dashboards are read again this often
  const STREAM_RETRY_MS = 60000; // and the stream is tried again this often
  const RECENT_TRADES = 15;
  const ELEMENT_COLOURS = {
    Sm: "#8c564b", Gd: "#9467bd", Tb: "#2ca02c", Dy: "#d62728", Lu: "#17becf",
    Sc: "#bcbd22", Y: "#ff7f0e", Nd: "#1f77b4", Pr: "#e377c2",
  };

  const $ = (id) => document.getElementById(id);
  const session = { me: null, generation: 0, poller: null, lastId: null, drawn: {}, blob: null };

  // --- talking to the API ---------------------------------------------------------------

  class Problem extends Error {
    constructor(status, body) {
      super((body && (body.detail || body.title)) || `the server answered ${status}`);
      this.status = status;
      this.body = body || {};
    }
  }

  function api(path, options = {}) {
    const headers = new Headers(options.headers || {});
    headers.set("Authorization", `Bearer ${sessionStorage.getItem(KEY) || ""}`);
    return fetch(path, { ...options, headers, cache: "no-store", credentials: "omit" });
  }

  async function problemOf(response) {
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON: the status says it */ }
    return new Problem(response.status, body);
  }

  async function getJson(path) {
    const response = await api(path, { headers: { Accept: "application/json" } });
    if (!response.ok) throw await problemOf(response);
    return response.json();
  }

  function batchPath(reference, tail = "") {
    const cut = reference.indexOf("/");
    const actor = reference.slice(0, cut), lot = reference.slice(cut + 1);
    return `/v1/batches/${encodeURIComponent(actor)}/${encodeURIComponent(lot)}${tail}`;
  }

  // The anomalies read model, behind this one function: its list and one anomaly's
  // detail, or { available: false } when the server has no such read model (404).
  async function anomalies(id) {
    const path = id ? `/v1/anomalies/${encodeURIComponent(id)}` : "/v1/anomalies?limit=50";
    const response = await api(path, { headers: { Accept: "application/json" } });
    if (response.status === 404 && !id) return { available: false };
    if (!response.ok) throw await problemOf(response);
    const body = await response.json();
    if (id) return { available: true, anomaly: body };
    const items = Array.isArray(body) ? body : body.anomalies || [];
    return { available: true, items, total: body.total ?? items.length };
  }

  // --- small DOM helpers ------------------------------------------------------------------

  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (name === "onclick") node.addEventListener("click", value);
      else if (value !== null && value !== undefined) node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function facts(target, pairs) {
    target.replaceChildren(
      ...pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
        .map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))),
    );
  }

  const kg = (text) => (text === null || text === undefined ? "" :
    Number(text).toLocaleString("en", { maximumFractionDigits: 3 }));
  const when = (text) => (text ? String(text).replace("T", " ").slice(0, 16) : "");
  const party = (p) => (!p ? "" : p.redacted ? "not shown" : p.pseudonym || p.code || "");
  const shown = (value) => (value && typeof value === "object" && value.redacted ? "not shown" : value);

  // --- charts (Plotly, served by the gateway from the installed plotly package) ----------

  const LAYOUT = {
    margin: { l: 56, r: 12, t: 8, b: 48 }, barmode: "stack", height: 260,
    font: { family: "DejaVu Sans, Arial, sans-serif", size: 11 },
    legend: { orientation: "h", y: -0.25 }, paper_bgcolor: "white", plot_bgcolor: "white",
  };
  const CONFIG = { displayModeBar: false, responsive: true };

  function draw(id, traces, layout = {}) {
    const empty = traces.every((t) => !(t.x || []).length);
    const annotations = empty ? [{ text: "nothing yet", showarrow: false, font: { color: "#888" } }] : [];
    const target = $(id);
    window.Plotly.react(target, traces, { ...LAYOUT, annotations, ...layout }, CONFIG);
    target.dataset.traces = String(traces.length);
    target.dataset.points = String(traces.reduce((n, t) => n + (t.x || []).length, 0));
  }

  function sumBy(rows, key) {
    const sums = new Map();
    for (const row of rows) sums.set(row[key] || "?", (sums.get(row[key] || "?") || 0) + Number(row.kg));
    return sums;
  }

  function bars(name, sums, extra = {}) {
    const keys = [...sums.keys()].sort();
    return { type: "bar", name, x: keys, y: keys.map((k) => sums.get(k)), ...extra };
  }

  function drawExports(dashboard) {
    const elements = Object.entries(dashboard.elements).filter(([, flows]) => flows.length);
    draw("chart-elements-month", elements.map(([e, flows]) =>
      bars(e, sumBy(flows, "month"), { marker: { color: ELEMENT_COLOURS[e] } })));
    draw("chart-elements-destination", elements.map(([e, flows]) =>
      bars(e, sumBy(flows, "destination_country"), { marker: { color: ELEMENT_COLOURS[e] } })));
    const byDestination = new Map();
    for (const flow of dashboard.magnets) {
      const key = flow.destination_country || "?";
      byDestination.set(key, [...(byDestination.get(key) || []), flow]);
    }
    draw("chart-magnets", [...byDestination.entries()].sort().map(([country, flows]) =>
      bars(country, sumBy(flows, "month"))));
    const exported = Object.entries(dashboard.element_kg).filter(([, v]) => Number(v) > 0);
    $("figure-elements").textContent = exported.length
      ? exported.map(([e, v]) => `${e} ${kg(v)} kg`).join(" · ") : "none";
    $("figure-magnets").textContent = `${kg(dashboard.magnets_kg)} kg`;
  }

  function drawTopClients(answer) {
    const clients = [...answer.clients].reverse(); // the largest on top
    draw("chart-top-clients", [{
      type: "bar", orientation: "h", name: "kg",
      y: clients.map((c) => party(c.client) || "?"), x: clients.map((c) => Number(c.kg)),
      text: clients.map((c) => `${(Number(c.share) * 100).toFixed(1)} %`), textposition: "auto",
      marker: { color: "#1f4e79" },
    }], { margin: { ...LAYOUT.margin, l: 110 }, showlegend: false });
  }

  function drawTotals(id, answer, key, measure = "kg", none = "?") {
    const rows = answer.totals.filter((t) => t[measure] !== undefined);
    draw(id, [{
      type: "bar", name: measure,
      x: rows.map((t) => t[key] || none), y: rows.map((t) => Number(t[measure])),
      customdata: rows.map((t) => t.lines), hovertemplate: "%{x}: %{y:,.3f} kg in %{customdata} lines<extra></extra>",
      marker: { color: key === "element" ? rows.map((t) => ELEMENT_COLOURS[t.element] || "#777") : "#2b7a78" },
    }], { showlegend: false });
  }

  const DASHBOARDS = [
    ["/v1/dashboards/exports", drawExports],
    ["/v1/dashboards/top-clients?limit=10", drawTopClients],
    ["/v1/trades/totals?by=month", (a) => {
      drawTotals("chart-month", a, "month");
      $("figure-kg").textContent = `${kg(a.kg)} kg`;
      $("figure-lines").textContent = String(a.lines);
    }],
    ["/v1/trades/totals?by=destination", (a) => drawTotals("chart-destination", a, "destination_country", "kg", "home sales")],
    ["/v1/trades/totals?by=element", (a) => drawTotals("chart-element", a, "element", "element_kg")],
  ];

  // Each answer is drawn again only when it changed: polling costs the page nothing.
  async function refreshDashboards() {
    await Promise.all(DASHBOARDS.map(async ([path, render]) => {
      try {
        const text = await (await checked(api(path, { headers: { Accept: "application/json" } }))).text();
        if (session.drawn[path] !== text) {
          session.drawn[path] = text;
          render(JSON.parse(text));
        }
      } catch (problem) {
        if (problem instanceof Problem && problem.status === 401) return signOut("Your key is no longer accepted.");
        console.warn("dashboard", path, problem.message);
      }
    }));
    $("updated-at").textContent = new Date().toLocaleTimeString();
  }

  async function checked(pending) {
    const response = await pending;
    if (!response.ok) throw await problemOf(response);
    return response;
  }

  // --- latest trades (the roles that may see lines) -----------------------------------------

  async function refreshTrades() {
    const note = $("trades-note"), table = $("trades-table");
    try {
      const first = await getJson("/v1/trades?limit=1");
      const offset = Math.max(0, first.total - RECENT_TRADES);
      const page = await getJson(`/v1/trades?limit=${RECENT_TRADES}&offset=${offset}`);
      const rows = [...page.lines].reverse().map((line) => el("tr", {
        class: line.batch ? "clickable" : null, "data-batch": line.batch,
        onclick: line.batch ? () => openBatch(line.batch) : null,
      },
      el("td", {}, when(line.occurred_at)), el("td", {}, line.kind), el("td", {}, line.batch || "not shown"),
      el("td", {}, line.material || ""), el("td", { class: "num" }, kg(line.kg)),
      el("td", {}, party(line.seller)), el("td", {}, party(line.client)),
      el("td", {}, line.destination_country || "")));
      table.querySelector("tbody").replaceChildren(...rows);
      table.hidden = rows.length === 0;
      note.textContent = `${first.total} lines in all; the newest ${rows.length} first. Click one to trace its batch.`;
    } catch (problem) {
      table.hidden = true;
      note.textContent = problem.status === 403
        ? `Your role sees totals and dashboards only: ${problem.message}.` : `Trades not shown: ${problem.message}`;
    }
  }

  // --- anomalies ------------------------------------------------------------------------------

  async function refreshAnomalies() {
    const note = $("anomalies-note"), table = $("anomalies-table");
    try {
      const found = await anomalies();
      if (!found.available) {
        table.hidden = true;
        note.textContent = "No anomalies read model on this server yet (GET /v1/anomalies answered 404).";
        return;
      }
      const rows = found.items.map((a) => el("tr", {
        class: `clickable severity-${a.severity}`, "data-anomaly": a.id, onclick: () => openAnomaly(a.id),
      },
      el("td", {}, when(a.occurred_at)), el("td", {}, a.severity), el("td", {}, a.title || a.rule),
      el("td", {}, a.reason), el("td", {}, a.status)));
      table.querySelector("tbody").replaceChildren(...rows);
      table.hidden = rows.length === 0;
      note.textContent = rows.length ? `${found.total} anomalies; click one for its evidence.` : "No anomaly found.";
    } catch (problem) {
      table.hidden = true;
      note.textContent = `Anomalies not shown: ${problem.message}`;
    }
  }

  async function openAnomaly(id) {
    const box = $("evidence");
    try {
      const { anomaly } = await anomalies(id);
      const evidence = anomaly.evidence || {};
      $("evidence-title").textContent = `${anomaly.title || anomaly.rule} (${anomaly.severity}, ${anomaly.status})`;
      $("evidence-reason").textContent = anomaly.reason || "";
      facts($("evidence-facts"), [
        ["Rule", anomaly.rule], ["When", when(anomaly.occurred_at)],
        ["Companies", (anomaly.companies || []).join(", ")], ["Elements", (anomaly.elements || []).join(", ")],
        ["Countries", (anomaly.countries || []).join(", ")],
        ...Object.entries(evidence.figures || {}).map(([k, v]) => [k.replaceAll("_", " "), JSON.stringify(shown(v))]),
      ]);
      const batches = (evidence.batches || []).map((b) => (typeof b === "string"
        ? el("li", {}, el("a", { href: "#batch", "data-batch": b, onclick: (e) => { e.preventDefault(); openBatch(b); } }, b))
        : el("li", {}, "a batch not shown")));
      const events = (evidence.events || []).map((e) => el("li", {},
        `${when(e.occurred_at)} ${e.type}${e.batch ? ` on ${e.batch}` : ""}${e.redacted ? " (details not shown)" : ""}`));
      const licences = (evidence.licences || []).map((l) => el("li", {}, shown(l)));
      $("evidence-lists").replaceChildren(
        ...(batches.length ? [el("h4", {}, "Batches"), el("ul", {}, ...batches)] : []),
        ...(events.length ? [el("h4", {}, "Events"), el("ul", {}, ...events)] : []),
        ...(licences.length ? [el("h4", {}, "Licences"), el("ul", {}, ...licences)] : []),
      );
      box.hidden = false;
      const first = (evidence.batches || []).find((b) => typeof b === "string");
      if (first) await openBatch(first, { keepEvidence: true });
      else $("batch-detail").hidden = true;
      box.scrollIntoView({ block: "start" });
    } catch (problem) {
      $("batch-note").textContent = `Anomaly not shown: ${problem.message}`;
    }
  }

  // --- one batch: its facts, its genealogy drawn, its provenance ------------------------------

  async function openBatch(reference, { keepEvidence = false } = {}) {
    if (!keepEvidence) $("evidence").hidden = true;
    $("batch-ref").value = reference;
    const note = $("batch-note");
    note.textContent = `Tracing ${reference}...`;
    try {
      const [state, provenance, graph] = await Promise.all([
        getJson(batchPath(reference)),
        getJson(batchPath(reference, "/provenance")),
        checked(api(batchPath(reference, "/graph.svg"), { headers: { Accept: "image/svg+xml" } })),
      ]);
      $("batch-title").textContent = state.batch || reference;
      facts($("batch-facts"), [
        ["Material", state.material], ["Status", state.status.replaceAll("_", " ")],
        ["Initial mass", `${kg(state.initial_kg)} kg`], ["Remaining", `${kg(state.remaining_kg)} kg`],
        ["Custodian", party(state.custodian)], ["Facility", state.facility && (state.facility.code || `in ${state.facility.country}`)],
        ["Origin", state.origin && `${state.origin.kind} at ${state.origin.facility}, ${state.origin.country}`],
        ["Export", state.export && `to ${state.export.destination_country}, consignee ${shown(state.export.consignee)}`],
        ["Quarantine", state.quarantine && state.quarantine.reason],
      ]);
      if (session.blob) URL.revokeObjectURL(session.blob);
      session.blob = URL.createObjectURL(await graph.blob());
      $("graph").src = session.blob;
      $("graph").dataset.batch = reference;
      $("graph-note").textContent = graph.headers.get("Lodestone-Graph-Note") || "";
      $("batch-detail").hidden = false; // shown first: Plotly sizes a chart to its box
      drawProvenance(provenance);
      note.textContent = "";
    } catch (problem) {
      $("batch-detail").hidden = true;
      note.textContent = `${reference}: ${problem.message}`;
    }
  }

  function drawProvenance(provenance) {
    const elements = Object.keys(provenance.elements).sort();
    const origins = new Map(); // origin label -> element -> share
    for (const element of elements) {
      for (const o of provenance.elements[element].origins) {
        const label = o.kind === "mined" ? `${o.mine} (${o.country})` : `${o.kind}${o.facility ? ` at ${o.facility}` : ""}`;
        const shares = origins.get(label) || {};
        shares[element] = (shares[element] || 0) + Number(o.share) * 100;
        origins.set(label, shares);
      }
    }
    draw("chart-provenance", [...origins.entries()].map(([label, shares]) => ({
      type: "bar", orientation: "h", name: label, y: elements, x: elements.map((e) => shares[e] || 0),
      hovertemplate: `${label}: %{x:.1f} % of %{y}<extra></extra>`,
    })), {
      height: Math.max(260, 30 * elements.length + 80), margin: { l: 40, r: 12, t: 8, b: 40 },
      legend: { orientation: "v", x: 1.02, y: 1 }, xaxis: { title: { text: "% of the element" }, range: [0, 100] },
    });
  }

  // --- monthly declaration (placeholder until the server offers it) -----------------------------

  async function lookForDeclaration(event) {
    if (event) event.preventDefault();
    const actor = $("declaration-actor").value.trim(), month = $("declaration-month").value;
    const status = $("declaration-status"), link = $("declaration-link");
    link.hidden = true;
    if (!actor || !month) return;
    const name = `${actor}-${month}.xlsx`;
    const response = await api(`/v1/declarations/${encodeURIComponent(actor)}/${encodeURIComponent(month)}.xlsx`);
    if (response.status !== 200) {
      await response.body?.cancel();
      status.textContent = response.status === 404
        ? `No declaration to download for ${actor}, ${month}: the server does not offer monthly declarations yet (404).`
        : `Declaration not available: ${(await problemOf(response)).message}`;
      return;
    }
    link.href = URL.createObjectURL(await response.blob());
    link.download = name;
    link.textContent = `Download ${name}`;
    link.hidden = false;
    status.textContent = "";
  }

  // --- live updates: the trades read model's change stream, or polling -------------------------

  // EventSource cannot send an Authorization header, so the stream is read with fetch():
  // text/event-stream parsed here (id, event, data; comment lines are heartbeats).
  async function follow(projection, generation) {
    const headers = { Accept: "text/event-stream" };
    if (session.lastId) headers["Last-Event-ID"] = session.lastId;
    let response;
    try {
      response = await api(`/v1/streams/${projection}`, { headers, signal: session.abort.signal });
    } catch (_) {
      return "unavailable";
    }
    if (!response.ok || !(response.headers.get("content-type") || "").startsWith("text/event-stream")) {
      await response.body?.cancel();
      return "unavailable";
    }
    stopPolling();
    setMode("live", "live: following the trade ledger's changes");
    refreshAll(); // whatever changed before the stream opened
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "", event = {};
    try {
      while (generation === session.generation) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        const lines = buffer.split(/\r\n|\r|\n/);
        buffer = lines.pop();
        for (const line of lines) {
          if (line === "") {
            if (event.id !== undefined) session.lastId = event.id;
            if (event.data !== undefined || event.event) scheduleRefresh();
            event = {};
          } else if (!line.startsWith(":")) {
            const cut = line.indexOf(":");
            const field = cut < 0 ? line : line.slice(0, cut);
            const value = cut < 0 ? "" : line.slice(cut + 1).replace(/^ /, "");
            if (field === "data") event.data = event.data === undefined ? value : `${event.data}\n${value}`;
            else if (field === "id" || field === "event") event[field] = value;
          }
        }
      }
    } catch (_) {
      // the connection dropped: reconnect from the last id seen
    }
    return "ended";
  }

  async function live(generation) {
    let failures = 0;
    while (generation === session.generation) {
      const outcome = await follow("trades", generation);
      if (generation !== session.generation) return;
      startPolling();
      if (outcome === "unavailable") {
        setMode("polling", `polling every ${POLL_MS / 1000} s (no live stream on this server)`);
        await sleep(STREAM_RETRY_MS);
      } else {
        setMode("polling", "stream interrupted: polling until it reconnects");
        await sleep(Math.min(30000, 1000 * 2 ** failures++));
      }
    }
  }

  let pending = null;
  function scheduleRefresh() {
    clearTimeout(pending);
    pending = setTimeout(refreshAll, 250); // a burst of changes, one refresh
  }

  function refreshAll() {
    return Promise.all([refreshDashboards(), refreshTrades(), refreshAnomalies()]);
  }

  function startPolling() {
    if (!session.poller) session.poller = setInterval(refreshAll, POLL_MS);
  }

  function stopPolling() {
    clearInterval(session.poller);
    session.poller = null;
  }

  function setMode(mode, title) {
    const badge = $("live-mode");
    badge.textContent = mode;
    badge.title = title;
    badge.dataset.mode = mode;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // --- signing in and out -----------------------------------------------------------------------

  async function signIn(event) {
    if (event) event.preventDefault();
    const typed = $("key").value.trim();
    if (typed) sessionStorage.setItem(KEY, typed);
    $("key").value = "";
    if (!sessionStorage.getItem(KEY)) return;
    try {
      session.me = await getJson("/v1/me");
    } catch (problem) {
      sessionStorage.removeItem(KEY);
      $("sign-in-error").textContent = problem.status === 401
        ? "This key is not accepted (unknown or revoked)." : `Cannot sign in: ${problem.message}`;
      return;
    }
    $("sign-in-error").textContent = "";
    $("sign-in").hidden = true;
    $("app").hidden = false;
    $("who").hidden = false;
    $("who-role").textContent = session.me.actor ? `${session.me.role} ${session.me.actor}` : session.me.role;
    document.body.dataset.role = session.me.role;
    session.generation += 1;
    session.abort = new AbortController();
    if (session.me.actor) $("declaration-actor").value = session.me.actor;
    $("declaration-month").value = previousMonth();
    await refreshAll();
    if (session.me.actor) lookForDeclaration();
    live(session.generation);
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    session.generation += 1;
    if (session.abort) session.abort.abort();
    stopPolling();
    session.drawn = {};
    session.lastId = null;
    $("app").hidden = true;
    $("who").hidden = true;
    $("sign-in").hidden = false;
    $("sign-in-error").textContent = typeof message === "string" ? message : "";
    delete document.body.dataset.role;
  }

  function previousMonth() {
    const now = new Date();
    const month = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
    return month.toISOString().slice(0, 7);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("sign-in-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => signOut());
    $("batch-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const reference = $("batch-ref").value.trim();
      if (reference.includes("/")) openBatch(reference);
      else $("batch-note").textContent = "Name a batch as ACTOR/LOT.";
    });
    $("declaration-form").addEventListener("submit", lookForDeclaration);
    $("graph").addEventListener("click", () => $("graph-box").classList.toggle("full"));
    if (sessionStorage.getItem(KEY)) signIn(); // a reload in the same tab stays signed in
  });
})();
