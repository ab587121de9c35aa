// The admin dashboard: reads /config and /metrics (the same data Prometheus scrapes) with the
// admin token and redraws every second. The token comes from the page's #token= fragment (never
// sent to the server) or the form, and is kept in sessionStorage for this tab only.
"use strict";

const state = { token: null, config: null, configAt: 0, previous: null, version: "" };

function readToken() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem("gateway-admin-token", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem("gateway-admin-token");
}

async function fetchWithToken(path) {
  const response = await fetch(path, { headers: { Authorization: "Bearer " + state.token }, cache: "no-store" });
  if (response.status === 401 || response.status === 403) {
    sessionStorage.removeItem("gateway-admin-token");
    state.token = null;
    throw new Error("the token was refused (" + response.status + ")");
  }
  if (!response.ok) throw new Error(path + " answered " + response.status);
  return response;
}

// Prometheus text format: samples as { name, labels, value }.
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    const labelText = match[3] || "";
    const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    let label;
    while ((label = labelPattern.exec(labelText)) !== null) {
      labels[label[1]] = label[2].replace(/\\n/g, "\n").replace(/\\"/g, "\"").replace(/\\\\/g, "\\");
    }
    samples.push({ name: match[1], labels, value: Number(match[4]) });
  }
  return samples;
}

function pick(samples, name, filter) {
  return samples.filter((s) => s.name === name && Object.entries(filter).every(([k, v]) => s.labels[k] === v));
}

function sum(samples) {
  return samples.reduce((total, s) => total + s.value, 0);
}

// A quantile from cumulative histogram buckets (upper bounds), interpolating inside a bucket.
function quantile(buckets, q) {
  const sorted = buckets.map((b) => ({ le: b.labels.le === "+Inf" ? Infinity : Number(b.labels.le), count: b.value }))
    .sort((a, b) => a.le - b.le);
  const total = sorted.length ? sorted[sorted.length - 1].count : 0;
  if (!total) return null;
  const rank = q * total;
  let lower = 0, below = 0;
  for (const bucket of sorted) {
    if (bucket.count >= rank) {
      if (bucket.le === Infinity) return lower;
      const inBucket = bucket.count - below;
      return inBucket ? lower + (bucket.le - lower) * ((rank - below) / inBucket) : bucket.le;
    }
    lower = bucket.le;
    below = bucket.count;
  }
  return lower;
}

function histogramDelta(now, before) {
  return now.map((bucket) => {
    const old = before.find((b) => b.labels.le === bucket.labels.le);
    return { labels: bucket.labels, value: bucket.value - (old ? old.value : 0) };
  });
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  return seconds < 1 ? (seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1) + " ms" : seconds.toFixed(2) + " s";
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function fillTable(id, rows) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren(...rows);
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = cell("none", "empty");
    td.colSpan = document.querySelectorAll("#" + id + " th").length;
    tr.append(td);
    body.append(tr);
  }
}

function row(attributes, cells) {
  const tr = document.createElement("tr");
  for (const [key, value] of Object.entries(attributes)) tr.dataset[key] = value;
  tr.append(...cells);
  return tr;
}

function render(config, samples, previous, seconds) {
  const build = samples.find((s) => s.name === "gateway_build_info");
  document.getElementById("version").textContent = build ? "version " + build.labels.version : "";

  fillTable("listeners", (config.listeners || []).map((listener) => {
    const name = listener.name || (listener.address || "0.0.0.0") + ":" + listener.port;
    const kind = listener.tls ? "https" : listener.redirectToHTTPS ? "redirect-to-https" : "http";
    const open = sum(pick(samples, "gateway_connections_open", { listener: name }));
    return row({ listener: name }, [cell(name), cell((listener.address || "0.0.0.0") + ":" + listener.port), cell(kind), cell(String(open), "number open")]);
  }));

  const routes = (config.routes || []).map((route, index) => ({ ...route, name: route.name || "routes[" + index + "]" }));
  fillTable("routes", routes.map((route) => {
    const filter = { route: route.name };
    const total = sum(pick(samples, "gateway_http_requests_total", filter));
    const errors = sum(pick(samples, "gateway_http_requests_total", filter).filter((s) => s.labels.code.startsWith("5")));
    const before = previous ? sum(pick(previous, "gateway_http_requests_total", filter)) : total;
    const rate = seconds > 0 ? Math.max(0, total - before) / seconds : 0;
    let buckets = pick(samples, "gateway_http_request_duration_seconds_bucket", filter);
    if (previous) {
      const recent = histogramDelta(buckets, pick(previous, "gateway_http_request_duration_seconds_bucket", filter));
      if (recent.some((b) => b.labels.le === "+Inf" && b.value > 0)) buckets = recent;
    }
    const match = route.match || {};
    const where = (match.hosts ? match.hosts.join(",") + " " : "") + (match.path || (match.pathPrefix || "/") + "*");
    return row({ route: route.name }, [
      cell(route.name), cell(where), cell(route.backend),
      cell(rate.toFixed(1), "number rate"), cell(String(total), "number total"), cell(String(errors), "number errors"),
      cell(duration(quantile(buckets, 0.5)), "number p50"), cell(duration(quantile(buckets, 0.99)), "number p99"),
    ]);
  }));

  fillTable("backends", Object.entries(config.backends || {}).sort().map(([name, declaration]) => {
    const health = pick(samples, "gateway_upstream_healthy", { backend: name });
    const upstreams = document.createElement("td");
    upstreams.className = "upstreams";
    if (!health.length) upstreams.textContent = "—";
    for (const sample of health) {
      const span = document.createElement("span");
      span.className = sample.value === 1 ? "healthy" : "unhealthy";
      span.dataset.upstream = sample.labels.upstream;
      span.textContent = sample.labels.upstream + (sample.value === 1 ? " ✓ " : " ✗ down ");
      upstreams.append(span);
    }
    return row({ backend: name }, [cell(name), cell(declaration.plugin), upstreams]);
  }));

  fillTable("issuers", Object.entries(config.issuers || {}).sort().map(([name, issuer]) => {
    const fetches = sum(pick(samples, "gateway_jwks_fetches_total", { issuer: name }));
    const last = pick(samples, "gateway_jwks_last_refresh_timestamp_seconds", { issuer: name })[0];
    const age = last && last.value > 0 ? Math.round(Date.now() / 1000 - last.value) + " s ago" : "—";
    return row({ issuer: name }, [cell(name), cell(issuer.issuer || ""), cell(String(fetches), "number"), cell(age, "age")]);
  }));

  const relays = [...new Set(samples.filter((s) => s.name.startsWith("gateway_relay_")).map((s) => s.labels.backend))].sort();
  fillTable("relay", relays.map((backend) => {
    const subscriptions = pick(samples, "gateway_relay_subscriptions", { backend })
      .map((s) => s.labels.namespace + ": " + s.value).join(", ") || "—";
    const published = sum(pick(samples, "gateway_relay_publications_total", { backend }));
    const before = previous ? sum(pick(previous, "gateway_relay_publications_total", { backend })) : published;
    return row({ relay: backend }, [
      cell(backend), cell(String(sum(pick(samples, "gateway_relay_connections", { backend }))), "number connections"),
      cell(subscriptions), cell((seconds > 0 ? Math.max(0, published - before) / seconds : 0).toFixed(1), "number"),
    ]);
  }));
}

async function refresh() {
  const status = document.getElementById("status");
  if (!state.token) {
    document.getElementById("login").dataset.visible = "true";
    status.dataset.state = "login";
    status.textContent = "enter the admin token";
    return;
  }
  try {
    const now = performance.now();
    if (!state.config || now - state.configAt > 10000) {
      state.config = await (await fetchWithToken("/config")).json();
      state.configAt = now;
    }
    const samples = parseMetrics(await (await fetchWithToken("/metrics")).text());
    const seconds = state.previous ? (now - state.previous.at) / 1000 : 0;
    render(state.config, samples, state.previous && state.previous.samples, seconds);
    state.previous = { samples, at: now };
    status.dataset.state = "live";
    status.dataset.updated = String(Date.now());
    status.textContent = "live, updated " + new Date().toLocaleTimeString();
  } catch (error) {
    status.dataset.state = "error";
    status.textContent = String(error.message || error);
  }
}

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = document.getElementById("token").value.trim();
  if (!value) return;
  sessionStorage.setItem("gateway-admin-token", value);
  state.token = value;
  document.getElementById("login").dataset.visible = "false";
  refresh();
});

state.token = readToken();
refresh();
setInterval(refresh, 1000);
