// Jackalope's management UI: refresh the server-rendered tables and facts from the JSON API,
// draw the overview's rate chart, and send forms and row buttons to the API.  No framework,
// no build step.  The table columns come from the page (data-columns), declared once in
// http/ui/tables.py; fmt() formats values as http/ui/formats.py does.
"use strict";
(function () {
  const REFRESH_MS = 5000;
  const CHART_SAMPLES = 60;
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // -- the API -----------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, reason) { super(reason); this.status = status; }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = { reason: text }; }
    }
    if (response.status === 401 && !(data && data.error === "not_authorised")) {
      // The session ended: log in again, then come back here.
      window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
      throw new ApiError(401, "logged out");
    }
    if (!response.ok) {
      throw new ApiError(response.status, (data && (data.reason || data.error)) || response.statusText);
    }
    return data;
  }

  // -- values, as formats.py shows them ------------------------------------------------------
  function lookup(row, key) {
    let value = row;
    for (const part of key ? key.split(".") : []) {
      if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
      value = value[part];
      if (value === undefined) return null;
    }
    return value === undefined ? null : value;
  }

  function fill(template, row, encode) {
    return template.replace(/\{([\w.]+)(?::([^}]*))?\}/g, (_, key, dflt) => {
      const value = lookup(row, key);
      const text = (value === null ? "" : String(value)) || dflt || "";
      return encode === false ? text : encodeURIComponent(text);
    });
  }

  function toJson(value) {
    if (Array.isArray(value)) return "[" + value.map(toJson).join(", ") + "]";
    if (value !== null && typeof value === "object") {
      return "{" + Object.keys(value).map((k) => JSON.stringify(k) + ": " + toJson(value[k])).join(", ") + "}";
    }
    return JSON.stringify(value);
  }

  const isNumber = (v) => typeof v === "number" && isFinite(v);
  const text = (v) => (v === null ? "" : typeof v === "object" ? fmtJson(v) : String(v));
  function fmtJson(v) {
    if (v === null || (Array.isArray(v) && !v.length) || (typeof v === "object" && !Array.isArray(v) && !Object.keys(v).length)) return "";
    return toJson(v);
  }
  const FORMATS = {
    text,
    int: (v) => (Number.isInteger(v) ? v.toLocaleString("en-US") : text(v)),
    rate: (v) => (isNumber(v) ? v.toFixed(1) + "/s" : ""),
    bool: (v) => (v === null ? "" : v ? "yes" : "no"),
    bytes: (v) => {
      if (!isNumber(v)) return text(v);
      let size = v;
      for (const unit of ["B", "KiB", "MiB", "GiB"]) {
        if (size < 1024 || unit === "GiB") return unit === "B" ? Math.trunc(size) + " B" : size.toFixed(1) + " " + unit;
        size /= 1024;
      }
      return "";
    },
    time: (v) => (isNumber(v) && v >= 0 ? new Date(v).toISOString().slice(0, 19).replace("T", " ") : text(v)),
    json: fmtJson,
    list: (v) => (Array.isArray(v) ? v.map(String).join(", ") : text(v)),
  };
  const fmt = (value, kind) => (FORMATS[kind] || text)(value);

  // -- tables ---------------------------------------------------------------------------------
  function cell(col, row) {
    if (col.action) {
      const a = col.action;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "action";
      button.dataset.method = a.method;
      button.dataset.api = fill(a.api, row);
      if (a.confirm) button.dataset.confirm = fill(a.confirm, row, false);
      button.setAttribute("aria-label", (a.label + " " + fill("{" + col.key + "}", row, false)).trim());
      button.textContent = a.label;
      return button;
    }
    const shown = fmt(lookup(row, col.key), col.kind) || col.empty || "";
    if (col.href) {
      const link = document.createElement("a");
      link.href = fill(col.href, row);
      link.textContent = shown;
      return link;
    }
    return document.createTextNode(shown);
  }

  const NUMERIC = new Set(["int", "rate", "bytes"]);

  function renderTable(table, data) {
    const columns = JSON.parse(table.dataset.columns);
    const context = JSON.parse(table.dataset.context || "{}");
    const items = table.dataset.items ? lookup(data, table.dataset.items) : data;
    const rows = Array.isArray(items) ? items : [];
    const body = document.createElement("tbody");
    rows.forEach((raw, index) => {
      const row = raw !== null && typeof raw === "object" ? Object.assign({}, context, raw) : raw;
      const tr = document.createElement("tr");
      tr.dataset.key = table.dataset.rowKey ? fill(table.dataset.rowKey, row, false) : String(index + 1);
      for (const col of columns) {
        const td = document.createElement(col.header ? "th" : "td");
        if (col.header) td.scope = "row";
        if (NUMERIC.has(col.kind)) td.className = "num";
        td.appendChild(cell(col, row));
        tr.appendChild(td);
      }
      body.appendChild(tr);
    });
    if (!rows.length) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      const td = document.createElement("td");
      td.colSpan = columns.length;
      td.textContent = table.dataset.empty || "";
      tr.appendChild(td);
      body.appendChild(tr);
    }
    table.tBodies[0].replaceWith(body);
    table.dataset.rows = String(rows.length);
    if (data && typeof data === "object" && "page_count" in data) renderPager(table, data);
    loadError(table.id, "");
  }

  // -- paged lists (RabbitMQ's page, page_size, name, use_regex) ------------------------------
  function renderPager(table, data) {
    const form = document.querySelector('form.list-filter[data-for="' + table.id + '"]');
    if (!form) return;
    const pages = Math.max(data.page_count || 1, 1);
    form.querySelector(".page-info").textContent =
      "Page " + (data.page || 1) + " of " + pages + ": " + (data.filtered_count || 0) + " shown of " + (data.total_count || 0);
    form.querySelector(".page-prev").disabled = (data.page || 1) <= 1;
    form.querySelector(".page-next").disabled = (data.page || 1) >= pages;
  }

  function listParams(form, page) {
    const params = new URLSearchParams({ page: String(page), page_size: form.elements.page_size.value });
    const name = form.elements.name.value;
    if (name) {
      params.set("name", name);
      params.set("use_regex", form.elements.use_regex.checked ? "true" : "false");
    }
    return params;
  }

  async function showPage(form, page) {
    const table = document.getElementById(form.dataset.for);
    const params = listParams(form, page);
    table.dataset.source = table.dataset.source.split("?")[0] + "?" + params;
    history.replaceState(null, "", location.pathname + "?" + params);
    try {
      renderTable(table, await api("GET", table.dataset.source));
    } catch (error) {
      loadError(table.id, "Could not load: " + error.message);
    }
  }

  function currentPage(form) {
    const table = document.getElementById(form.dataset.for);
    return Number(new URLSearchParams(table.dataset.source.split("?")[1] || "").get("page") || 1);
  }

  function loadError(id, message) {
    const p = document.querySelector('.load-error[data-for="' + id + '"]');
    if (!p) return;
    p.hidden = !message;
    p.textContent = message;
  }

  function renderFacts(dl, data) {
    for (const dd of dl.querySelectorAll("dd[data-field]")) {
      dd.textContent = fmt(lookup(data, dd.dataset.field), dd.dataset.kind);
    }
  }

  // -- the overview's chart --------------------------------------------------------------------
  const samples = [];
  function renderChart(svg, data) {
    const series = JSON.parse(svg.dataset.series);
    samples.push(series.map(([stat]) => Number(lookup(data, "message_stats." + stat + "_details.rate")) || 0));
    while (samples.length > CHART_SAMPLES) samples.shift();
    const width = 600, height = 160, pad = 4;
    const peak = Math.max(1, ...samples.flat());
    const step = width / (CHART_SAMPLES - 1);
    const offset = (CHART_SAMPLES - samples.length) * step;
    const ns = "http://www.w3.org/2000/svg";
    svg.replaceChildren();
    for (let y = 0; y <= 2; y++) {
      const line = document.createElementNS(ns, "line");
      const at = pad + (y * (height - 2 * pad)) / 2;
      Object.entries({ x1: 0, x2: width, y1: at, y2: at, class: "grid" }).forEach(([k, v]) => line.setAttribute(k, v));
      svg.appendChild(line);
    }
    series.forEach((_, s) => {
      const line = document.createElementNS(ns, "polyline");
      const points = samples.map((sample, i) => {
        const x = offset + i * step;
        const y = height - pad - (sample[s] / peak) * (height - 2 * pad);
        return x.toFixed(1) + "," + y.toFixed(1);
      });
      line.setAttribute("points", points.join(" "));
      line.setAttribute("class", "series k" + s);
      svg.appendChild(line);
    });
    const peakLabel = document.getElementById("rates-peak");
    if (peakLabel) peakLabel.textContent = fmt(Math.max(0, ...samples.flat()), "rate");
    svg.dataset.samples = String(samples.length);
  }

  // -- refreshing ------------------------------------------------------------------------------
  function liveElements() {
    return document.querySelectorAll("table[data-refresh][data-source], dl.facts[data-source][data-refresh], svg[data-source]");
  }

  async function refresh() {
    const bySource = new Map();
    for (const el of liveElements()) {
      if (!bySource.has(el.dataset.source)) bySource.set(el.dataset.source, []);
      bySource.get(el.dataset.source).push(el);
    }
    await Promise.all([...bySource].map(async ([source, elements]) => {
      let data;
      try {
        data = await api("GET", source);
      } catch (error) {
        for (const el of elements.filter((e) => e.id)) {
          const pager = document.querySelector('form.list-filter[data-for="' + el.id + '"]');
          // The page asked for is gone (the list shrank): back to the first.
          if (pager && error.status === 400 && currentPage(pager) > 1) showPage(pager, 1);
          else loadError(el.id, "Could not refresh: " + error.message);
        }
        return;
      }
      for (const el of elements) {
        if (el.tagName === "TABLE") {
          // Keep the keyboard's place: a table holding the focus waits for the next round.
          if (!el.contains(document.activeElement)) renderTable(el, data);
        } else if (el.tagName === "DL") renderFacts(el, data);
        else renderChart(el, data);
      }
    }));
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  }

  function schedule() {
    let timer = null;
    const tick = async () => {
      if (!document.hidden) await refresh();
      timer = setTimeout(tick, REFRESH_MS);
    };
    if (liveElements().length) {
      // The chart wants a first sample now; the server rendered the rest.
      if (document.querySelector("svg[data-source]")) tick(); else timer = setTimeout(tick, REFRESH_MS);
    }
    return () => clearTimeout(timer);
  }

  // -- forms and buttons -----------------------------------------------------------------------
  function setPath(obj, path, value) {
    const parts = path.split(".");
    let at = obj;
    for (const part of parts.slice(0, -1)) {
      if (at[part] === undefined || typeof at[part] !== "object") at[part] = {};
      at = at[part];
    }
    const last = parts[parts.length - 1];
    if (value !== null && typeof value === "object" && !Array.isArray(value) && typeof at[last] === "object" && at[last] !== null) {
      Object.assign(at[last], value);
    } else {
      at[last] = value;
    }
  }

  function fieldLabel(field) {
    const label = field.id && document.querySelector('label[for="' + field.id + '"]');
    return label ? label.textContent.trim() : field.name;
  }

  // The value the API gets for one field; undefined leaves it out.
  function fieldValue(field) {
    const type = field.dataset.type || "";
    if (type === "bool") return field.checked;
    const raw = field.value;
    if (raw === "" && !(field.tagName === "TEXTAREA" && !type) && !("keep" in field.dataset)) return undefined;
    if (type === "int") {
      const n = Number(raw);
      if (!Number.isInteger(n)) throw new Error(fieldLabel(field) + ": a whole number is needed");
      return n;
    }
    if (type === "json") {
      try { return JSON.parse(raw); } catch (e) { throw new Error(fieldLabel(field) + ": not valid JSON"); }
    }
    if (type === "list") return raw.split(/\s+/).filter(Boolean);
    if (type === "epoch-ms") {
      const ms = Date.parse(raw + "Z");
      if (isNaN(ms)) throw new Error(fieldLabel(field) + ": not a date and time");
      return ms;
    }
    return raw;
  }

  function say(status, message, isError) {
    if (!status) return;
    status.textContent = message;
    status.classList.toggle("error", !!isError);
  }

  function answerContext(answer, target, values) {
    const context = Object.assign({}, values || {});
    if (answer !== null && typeof answer === "object" && !Array.isArray(answer)) Object.assign(context, answer);
    const items = target && target.dataset.items ? lookup(answer, target.dataset.items) : answer;
    context.count = Array.isArray(items) ? items.length : Array.isArray(answer) ? answer.length : "";
    return context;
  }

  async function done(element, answer, status, values) {
    const target = element.dataset.target && document.getElementById(element.dataset.target);
    if (target) renderTable(target, answer);
    const then = element.dataset.then || "";
    if (then.startsWith("go:")) {
      window.location.assign(then.slice(3));
      return;
    }
    say(status, fill(element.dataset.success || "Done.", answerContext(answer, target, values), false), false);
    await refresh();
  }

  async function submit(form) {
    const status = form.querySelector(".form-status");
    const values = {};
    const shown = {};
    const body = {};
    const query = new URLSearchParams();
    const method = form.dataset.method || "POST";
    try {
      for (const field of form.elements) {
        if (!field.name || field.disabled || field.type === "submit") continue;
        const value = fieldValue(field);
        shown[field.name] = field.value;
        if ("path" in field.dataset) values[field.name] = field.value;
        else if (value === undefined) continue;
        else if (method === "GET") query.set(field.name, String(value));
        else setPath(body, field.name, value);
      }
    } catch (error) {
      say(status, error.message, true);
      return;
    }
    let path = fill(form.dataset.api, values);
    if (method === "GET" && [...query].length) path += (path.includes("?") ? "&" : "?") + query;
    say(status, "Working…", false);
    form.setAttribute("aria-busy", "true");
    try {
      const answer = await api(method, path, method === "GET" ? undefined : body);
      await done(form, answer, status, shown);
    } catch (error) {
      say(status, "Failed: " + error.message, true);
    } finally {
      form.removeAttribute("aria-busy");
    }
  }

  async function press(button) {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    const section = button.closest("section");
    const status = (section && section.querySelector(".form-status")) || document.getElementById("page-status");
    button.disabled = true;
    try {
      const answer = await api(button.dataset.method, button.dataset.api);
      await done(button, answer, status);
    } catch (error) {
      say(status, "Failed: " + error.message, true);
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form instanceof HTMLFormElement && form.classList.contains("list-filter")) {
      event.preventDefault();
      showPage(form, 1);
      return;
    }
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("api")) return;
    event.preventDefault();
    submit(form);
  });
  document.addEventListener("click", (event) => {
    const step = event.target.closest && event.target.closest("form.list-filter .page-prev, form.list-filter .page-next");
    if (step) {
      const form = step.closest("form");
      showPage(form, currentPage(form) + (step.classList.contains("page-next") ? 1 : -1));
      return;
    }
    const button = event.target.closest && event.target.closest("button.action[data-api]");
    if (!button) return;
    event.preventDefault();
    press(button);
  });

  window.jackalope = { refresh, fmt, fill };
  document.addEventListener("DOMContentLoaded", schedule);
})();
