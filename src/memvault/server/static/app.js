// memvault browser: a plain client of the REST API under /v1.
//
// Safety rule for this file: memory content (text, tags, metadata, ids, anything from the
// server) only ever reaches the page through textContent, form values or attribute
// setters on elements we create. Nothing here assigns innerHTML/outerHTML or uses
// insertAdjacentHTML / document.write, so hostile memory text is shown, never run.
"use strict";

(function () {
  const KEY = "memvault.apiKey";
  const KINDS = ["turn", "fact", "summary", "preference", "note", "event", "profile"];
  const $ = (id) => document.getElementById(id);

  const state = {
    tab: "search",
    listOffset: 0,
    listNext: null,
    current: null, // the MemoryItem shown in the detail panel
  };

  // -- DOM helpers ------------------------------------------------------------------------
  function el(tag, opts, ...children) {
    const node = document.createElement(tag);
    if (opts) {
      if (opts.cls) node.className = opts.cls;
      if (opts.text !== undefined && opts.text !== null) node.textContent = String(opts.text);
      if (opts.title) node.title = String(opts.title);
      if (opts.data) for (const [k, v] of Object.entries(opts.data)) node.dataset[k] = String(v);
      if (opts.onclick) node.addEventListener("click", opts.onclick);
      if (opts.type) node.type = opts.type;
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function json(value) {
    try {
      return JSON.stringify(value, null, 2);
    } catch (e) {
      return String(value);
    }
  }

  function shortText(text, n) {
    const s = String(text ?? "");
    return s.length > n ? s.slice(0, n - 1) + "…" : s;
  }

  // "2026-11-23T00:26:46.693316+00:00" -> "2026-11-23 00:26:46.693 UTC" (full value in the tooltip)
  function shortTime(iso) {
    if (!iso) return null;
    return String(iso).replace("T", " ").replace(/(\.\d{3})\d*/, "$1").replace(/\+00:00$/, " UTC");
  }

  function showError(message) {
    $("error-text").textContent = message;
    show($("error"), true);
  }

  function hideError() {
    show($("error"), false);
  }

  let noticeTimer = null;
  function notice(message) {
    const n = $("notice");
    n.textContent = message;
    show(n, true);
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => show(n, false), 4000);
  }

  // -- the API ------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body, params) {
    const key = sessionStorage.getItem(KEY);
    let url = "/v1" + path;
    if (params) {
      const q = new URLSearchParams();
      for (const [k, v] of params) if (v !== null && v !== undefined && v !== "") q.append(k, v);
      const s = q.toString();
      if (s) url += "?" + s;
    }
    const headers = { Accept: "application/json" };
    if (key) headers.Authorization = "Bearer " + key;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let resp;
    try {
      resp = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch (e) {
      throw new ApiError(0, "network", "cannot reach the server: " + e.message);
    }
    if (resp.status === 204) return null;
    let doc = null;
    try {
      doc = await resp.json();
    } catch (e) {
      doc = null;
    }
    if (!resp.ok) {
      const code = (doc && doc.code) || "http_" + resp.status;
      const message = (doc && doc.message) || resp.statusText || "request failed";
      throw new ApiError(resp.status, code, message);
    }
    return doc;
  }

  // Runs an action; API errors go to the banner, a 401 back to the key form.
  async function guarded(fn) {
    hideError();
    try {
      return await fn();
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        signOut("The key was refused: " + e.message);
      } else if (e instanceof ApiError) {
        showError(e.code + ": " + e.message);
      } else {
        showError(String(e && e.message ? e.message : e));
      }
      return undefined;
    }
  }

  // -- sign in / out ------------------------------------------------------------------------
  async function signIn(key) {
    sessionStorage.setItem(KEY, key);
    try {
      const who = await api("GET", "/whoami");
      $("who-name").textContent = who.name + " (user " + who.user_id +
        (who.agent_id ? ", agent " + who.agent_id : "") + ")";
      show($("login"), false);
      show($("login-error"), false);
      show($("app"), true);
      show($("tabs"), true);
      show($("who"), true);
      $("api-key").value = "";
      selectTab(state.tab);
      openFromHash();
      return true;
    } catch (e) {
      sessionStorage.removeItem(KEY);
      const err = $("login-error");
      err.textContent = e instanceof ApiError && e.status === 401
        ? "That key was refused (" + e.message + ")."
        : "Could not check the key: " + e.message;
      show(err, true);
      showLogin();
      return false;
    }
  }

  function showLogin() {
    show($("app"), false);
    show($("tabs"), false);
    show($("who"), false);
    show($("login"), true);
    $("api-key").focus();
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    state.current = null;
    clear($("search-results"));
    clear($("list-results"));
    closeDetail();
    if (message) {
      const err = $("login-error");
      err.textContent = message;
      show(err, true);
    } else {
      show($("login-error"), false);
    }
    showLogin();
  }

  // -- tabs -------------------------------------------------------------------------------------
  function selectTab(name) {
    state.tab = name;
    for (const b of document.querySelectorAll(".tab")) {
      b.classList.toggle("active", b.dataset.tab === name);
      b.setAttribute("aria-selected", b.dataset.tab === name ? "true" : "false");
    }
    for (const t of ["search", "browse", "scheduler"]) show($("panel-" + t), t === name);
    if (name === "browse") loadList();
    if (name === "scheduler") loadScheduler();
    if (name === "search") $("search-query").focus();
  }

  // -- result rows ------------------------------------------------------------------------------
  function itemRow(item, extra) {
    const li = el("li", { cls: "result", data: { id: item.id } });
    li.tabIndex = 0;
    const head = el("div", { cls: "result-head" },
      el("span", { cls: "badge kind", text: item.kind }),
      item.status !== "active" ? el("span", { cls: "badge status-" + item.status, text: item.status }) : null,
      el("span", { cls: "muted", text: "v" + item.version }),
      extra ? el("span", { cls: "muted score", text: extra }) : null,
      el("span", { cls: "muted id", text: item.id }));
    const text = el("div", { cls: "result-text", text: shortText(item.text, 300) });
    li.append(head, text);
    if (item.tags && item.tags.length) {
      const tags = el("div", { cls: "tags" });
      for (const t of item.tags) tags.append(el("span", { cls: "tag", text: t }));
      li.append(tags);
    }
    const open = () => openItem(item.id);
    li.addEventListener("click", open);
    li.addEventListener("keydown", (ev) => { if (ev.key === "Enter") open(); });
    if (state.current && state.current.id === item.id) li.classList.add("selected");
    return li;
  }

  function markSelected() {
    for (const li of document.querySelectorAll(".result")) {
      li.classList.toggle("selected", !!state.current && li.dataset.id === state.current.id);
    }
  }

  // -- search ------------------------------------------------------------------------------------
  async function runSearch() {
    const query = $("search-query").value.trim();
    if (!query) return;
    const k = parseInt($("search-k").value, 10) || 10;
    const kind = $("search-kind").value;
    const body = { query, k };
    if (kind) body.filters = { kind };
    $("search-summary").textContent = "Searching…";
    const doc = await guarded(() => api("POST", "/search", body));
    if (!doc) { $("search-summary").textContent = ""; return; }
    const list = $("search-results");
    clear(list);
    for (const hit of doc.hits) {
      list.append(itemRow(hit.item, "score " + Number(hit.score).toFixed(4)));
    }
    $("search-summary").textContent = doc.hits.length
      ? doc.hits.length + " hit" + (doc.hits.length === 1 ? "" : "s") + " for “" + query + "”"
      : "No memories match “" + query + "”.";
  }

  // -- list ----------------------------------------------------------------------------------------
  async function loadList() {
    const limit = parseInt($("list-limit").value, 10) || 25;
    const kind = $("list-kind").value;
    const status = $("list-status").value;
    const params = [["limit", limit], ["offset", state.listOffset], ["status", status]];
    if (kind) params.push(["filters", JSON.stringify({ kind })]);
    const doc = await guarded(() => api("GET", "/memories", undefined, params));
    if (!doc) return;
    const list = $("list-results");
    clear(list);
    for (const item of doc.items) list.append(itemRow(item));
    state.listNext = doc.next_offset;
    const first = doc.items.length ? doc.offset + 1 : 0;
    const last = doc.offset + doc.items.length;
    $("list-summary").textContent = doc.total
      ? "Showing " + first + "–" + last + " of " + doc.total + " (" + status + ")"
      : "No memories (" + status + (kind ? ", kind " + kind : "") + ").";
    $("list-page").textContent = "page " + (Math.floor(doc.offset / limit) + 1) +
      " of " + Math.max(1, Math.ceil(doc.total / limit));
    $("list-prev").disabled = doc.offset <= 0;
    $("list-next").disabled = doc.next_offset === null || doc.next_offset === undefined;
  }

  // -- detail ----------------------------------------------------------------------------------------
  async function openItem(id) {
    const item = await guarded(() => api("GET", "/memories/" + encodeURIComponent(id)));
    if (!item) return;
    const hist = await guarded(() => api("GET", "/memories/" + encodeURIComponent(id) + "/history"));
    renderDetail(item, hist ? hist.versions : []);
    if (location.hash !== "#item=" + encodeURIComponent(id)) {
      history.replaceState(null, "", "#item=" + encodeURIComponent(id));
    }
  }

  function openFromHash() {
    const m = /^#item=(.+)$/.exec(location.hash);
    if (m) openItem(decodeURIComponent(m[1]));
  }

  function closeDetail() {
    state.current = null;
    show($("detail"), false);
    show($("detail-empty"), true);
    if (location.hash) history.replaceState(null, "", location.pathname);
    markSelected();
  }

  function kvRow(key, value) {
    return el("tr", null, el("th", { text: key }),
      el("td", { text: value === null || value === undefined ? "—" : value }));
  }

  function renderDetail(item, versions) {
    state.current = item;
    show($("detail-empty"), false);
    show($("detail"), true);
    show($("edit-form"), false);
    show($("delete-confirm"), false);
    const status = $("detail-status");
    status.textContent = item.status;
    status.className = "badge status-" + item.status;
    $("detail-text").textContent = item.text;
    const gone = item.status === "deleted" || item.status === "archived";
    show($("restore-button"), gone);
    show($("delete-button"), item.status !== "deleted");
    show($("edit-toggle"), item.status !== "deleted");

    const fields = $("detail-fields").tBodies[0];
    clear(fields);
    for (const k of ["id", "kind", "version", "status", "user_id", "agent_id", "session_id",
      "cube_id", "created_at", "event_time", "valid_from", "valid_to", "importance",
      "expires_at", "access_count", "last_accessed_at"]) {
      fields.append(kvRow(k, item[k]));
    }
    fields.append(kvRow("tags", item.tags && item.tags.length ? item.tags.join(", ") : null));

    $("detail-metadata").textContent = json(item.metadata || {});
    $("detail-provenance").textContent = json(item.provenance || {});

    const links = $("detail-links");
    clear(links);
    if (!item.links || !item.links.length) {
      links.append(el("li", { cls: "muted", text: "No links." }));
    } else {
      for (const link of item.links) {
        const a = el("button", { cls: "link", type: "button", text: link.target,
          onclick: () => openItem(link.target) });
        links.append(el("li", null, el("span", { cls: "badge", text: link.kind }), " ", a,
          el("span", { cls: "muted", text: " weight " + link.weight })));
      }
    }

    const body = $("history").tBodies[0];
    clear(body);
    for (const v of versions) {
      const tr = el("tr", { cls: "version" + (v.version === item.version ? " current" : ""),
        data: { version: v.version } },
        el("td", { text: v.version }),
        el("td", null, el("span", { cls: "badge status-" + v.status, text: v.status })),
        el("td", { cls: "time", text: shortTime(v.valid_from) || "—", title: v.valid_from }),
        el("td", { cls: "time", text: shortTime(v.valid_to) || "current", title: v.valid_to }),
        el("td", { cls: "vtext", text: shortText(v.text, 160), title: v.text }));
      body.append(tr);
    }
    $("history-count").textContent = "(" + versions.length + " version" +
      (versions.length === 1 ? "" : "s") + ")";
    markSelected();
  }

  function startEdit() {
    const item = state.current;
    if (!item) return;
    $("edit-text").value = item.text;
    $("edit-tags").value = (item.tags || []).join(", ");
    $("edit-metadata").value = json(item.metadata || {});
    $("edit-reason").value = "";
    show($("edit-form"), true);
    $("edit-text").focus();
  }

  async function saveEdit() {
    const item = state.current;
    if (!item) return;
    const body = {};
    const text = $("edit-text").value;
    if (text !== item.text) body.text = text;
    const tags = $("edit-tags").value.split(",").map((t) => t.trim()).filter((t) => t);
    if (JSON.stringify(tags) !== JSON.stringify(item.tags || [])) body.tags = tags;
    let metadata;
    try {
      metadata = JSON.parse($("edit-metadata").value || "{}");
    } catch (e) {
      showError("Metadata is not valid JSON: " + e.message);
      return;
    }
    if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
      showError("Metadata must be a JSON object.");
      return;
    }
    if (JSON.stringify(metadata) !== JSON.stringify(item.metadata || {})) body.metadata = metadata;
    if (!Object.keys(body).length) {
      notice("Nothing changed.");
      show($("edit-form"), false);
      return;
    }
    const reason = $("edit-reason").value.trim();
    if (reason) body.reason = reason;
    const updated = await guarded(() => api("PATCH", "/memories/" + encodeURIComponent(item.id), body));
    if (!updated) return;
    notice("Saved version " + updated.version + ".");
    await openItem(item.id);
    refreshLists();
  }

  async function doDelete() {
    const item = state.current;
    if (!item) return;
    const done = await guarded(() => api("DELETE", "/memories/" + encodeURIComponent(item.id)));
    if (!done) return;
    notice("Deleted. Choose status “deleted” in Browse to find it again.");
    await openItem(item.id);
    refreshLists();
  }

  async function doRestore() {
    const item = state.current;
    if (!item) return;
    const done = await guarded(() => api("POST", "/memories/" + encodeURIComponent(item.id) + "/restore"));
    if (!done) return;
    notice("Restored as version " + done.version + ".");
    await openItem(item.id);
    refreshLists();
  }

  function refreshLists() {
    if (state.tab === "browse") loadList();
    if (state.tab === "search" && $("search-query").value.trim()) runSearch();
  }

  // -- scheduler --------------------------------------------------------------------------------
  async function loadScheduler() {
    const doc = await guarded(() => api("GET", "/metrics"));
    if (!doc) return;
    const counts = $("scheduler-counts").tBodies[0];
    clear(counts);
    let total = 0;
    for (const [status, n] of Object.entries(doc.memories || {})) {
      counts.append(kvRow(status, n));
      total += Number(n) || 0;
    }
    counts.append(kvRow("total", total));

    const server = $("scheduler-server").tBodies[0];
    clear(server);
    server.append(kvRow("principal", doc.principal));
    server.append(kvRow("uptime", (doc.uptime_s ?? 0).toFixed(1) + " s"));
    server.append(kvRow("requests", doc.requests));
    server.append(kvRow("worker threads", doc.threads));
    server.append(kvRow("in flight", doc.in_flight));
    server.append(kvRow("queue depth", doc.queue_depth));
    const model = doc.model || {};
    server.append(kvRow("LLM", model.configured ? model.id : "none (chat unavailable)"));
    if (model.configured) {
      server.append(kvRow("LLM in flight / queued", model.in_flight + " / " + model.queue_depth));
    }

    const routes = $("scheduler-routes").tBodies[0];
    clear(routes);
    const entries = Object.entries(doc.routes || {});
    if (!entries.length) {
      const td = el("td", { cls: "muted", text: doc.routes ? "No requests yet."
        : "Per-route statistics are shown to admin keys only." });
      td.colSpan = 7;
      routes.append(el("tr", null, td));
    }
    for (const [name, r] of entries) {
      routes.append(el("tr", null,
        el("td", { cls: "route", text: name }),
        el("td", { text: r.count }),
        el("td", { text: r.client_errors }),
        el("td", { text: r.server_errors }),
        el("td", { text: r.p50_ms ?? "—" }),
        el("td", { text: r.p95_ms ?? "—" }),
        el("td", { text: r.p99_ms ?? "—" })));
    }
    await loadTiers();
    $("scheduler-updated").textContent = "updated " + new Date().toLocaleTimeString();
  }

  // The activation blocks and adapters made from this key's memories (GET /v1/scheduler).
  function fillTier(table, empty, rows, emptyText) {
    const body = $(table).tBodies[0];
    clear(body);
    for (const r of rows) body.append(r);
    show($(table), rows.length > 0);
    $(empty).textContent = emptyText;
    show($(empty), rows.length === 0);
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "—";
  }

  async function loadTiers() {
    const doc = await guarded(() => api("GET", "/scheduler"));
    if (!doc) return;
    const pager = $("scheduler-pager").tBodies[0];
    clear(pager);
    const pg = doc.pager || {};
    const mib = (n) => ((n || 0) / 1048576).toFixed(1) + " MiB";
    pager.append(kvRow("budget", mib(pg.budget_bytes)));
    pager.append(kvRow("resident", mib(pg.resident_bytes) + " in " + (pg.pages || 0) +
      " pages (peak " + mib(pg.peak_bytes) + ")"));
    for (const [kind, row] of Object.entries(pg.by_kind || {})) {
      pager.append(kvRow("  " + kind + "s", row.pages + " (" + mib(row.bytes) + ")"));
    }
    pager.append(kvRow("hit rate", pg.hit_rate == null ? "—" :
      (100 * pg.hit_rate).toFixed(1) + " % (" + pg.hits + " hits, " + pg.misses + " misses)"));
    pager.append(kvRow("evictions", (pg.evictions || 0) + (pg.bypass ? ", " + pg.bypass +
      " served unkept" : "")));
    pager.append(kvRow("page-in p50 / p95", pg.page_in_s_per_mb_p50 == null ? "—" :
      (1000 * pg.page_in_s_per_mb_p50).toFixed(1) + " / " +
      (1000 * pg.page_in_s_per_mb_p95).toFixed(1) + " ms per MiB"));
    pager.append(kvRow("KV blocks stored as", pg.kv_quant || "fp16"));
    pager.append(kvRow("eviction policy", pg.policy || "—"));
    const act = doc.activation || { available: false, blocks: [] };
    fillTier("scheduler-blocks", "scheduler-blocks-empty", act.blocks.map((b) =>
      el("tr", { data: { block: b.hash } },
        el("td", { cls: "id", text: b.hash.slice(0, 12), title: b.hash }),
        el("td", { text: b.n_tokens }),
        el("td", { text: b.item_ids.length, title: b.item_ids.join("\n") }),
        el("td", null, el("span", {
          cls: b.stale ? "badge stale" : "badge fresh",
          text: b.stale ? "stale (" + b.stale_ids.length + " changed)" : "fresh" })),
        el("td", { cls: "id", text: b.model.slice(0, 12), title: b.model }),
        el("td", { text: when(b.created_at) }))),
      act.available
        ? "No activation blocks yet. A block is built the first time you chat with the " +
          "local model (or when the scheduler promotes your hottest facts), once you have " +
          "profile, preference, fact or summary memories."
        : "Activation blocks need a vault file on this server (this one is in-memory or " +
          "PostgreSQL), so there are none.");
    const par = doc.adapters || { available: false, adapters: [] };
    fillTier("scheduler-adapters", "scheduler-adapters-empty", par.adapters.map((a) =>
      el("tr", { data: { adapter: a.name } },
        el("td", { text: a.name, title: a.key }),
        el("td", { text: a.sources }),
        el("td", { text: (a.size_bytes / 1048576).toFixed(1) + " MiB" }),
        el("td", { cls: "id", text: a.model.slice(0, 12), title: a.model }),
        el("td", { text: when(a.created_at) }))),
      par.available
        ? "No adapters yet. The scheduler distils one when memories stay stable and are " +
          "recalled often (or run: memvault adapter distill)."
        : "Adapters need a vault file on this server, so there are none.");
  }

  // -- wiring ------------------------------------------------------------------------------------
  function fillKinds() {
    for (const sel of document.querySelectorAll(".kind-select")) {
      const any = el("option", { text: "any" });
      any.value = "";
      sel.append(any);
      for (const k of KINDS) {
        const opt = el("option", { text: k });
        opt.value = k;
        sel.append(opt);
      }
    }
  }

  function init() {
    fillKinds();
    $("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const key = $("api-key").value.trim();
      if (key) signIn(key);
    });
    $("sign-out").addEventListener("click", () => signOut(null));
    $("error-close").addEventListener("click", hideError);
    for (const b of document.querySelectorAll(".tab")) {
      b.addEventListener("click", () => selectTab(b.dataset.tab));
    }
    $("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); runSearch(); });
    $("list-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      state.listOffset = 0;
      loadList();
    });
    for (const id of ["list-kind", "list-status", "list-limit"]) {
      $(id).addEventListener("change", () => { state.listOffset = 0; loadList(); });
    }
    $("list-prev").addEventListener("click", () => {
      const limit = parseInt($("list-limit").value, 10) || 25;
      state.listOffset = Math.max(0, state.listOffset - limit);
      loadList();
    });
    $("list-next").addEventListener("click", () => {
      if (state.listNext !== null && state.listNext !== undefined) {
        state.listOffset = state.listNext;
        loadList();
      }
    });
    $("detail-close").addEventListener("click", closeDetail);
    $("edit-toggle").addEventListener("click", startEdit);
    $("edit-cancel").addEventListener("click", () => show($("edit-form"), false));
    $("edit-form").addEventListener("submit", (ev) => { ev.preventDefault(); saveEdit(); });
    $("delete-button").addEventListener("click", () => show($("delete-confirm"), true));
    $("delete-no").addEventListener("click", () => show($("delete-confirm"), false));
    $("delete-yes").addEventListener("click", doDelete);
    $("restore-button").addEventListener("click", doRestore);
    $("scheduler-refresh").addEventListener("click", loadScheduler);
    window.addEventListener("hashchange", openFromHash);

    const key = sessionStorage.getItem(KEY);
    if (key) signIn(key);
    else showLogin();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
