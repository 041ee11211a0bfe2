// The dashboard: log in, fleet table with health colours, a device page, live alerts with acknowledge.
// Data comes from /api/v1 with the session cookie; live changes from the SSE stream.
import { showDevice } from "/dashboard/device.js";

const API = "/api/v1";
const $ = (sel) => document.querySelector(sel);
const alerts = new Map(); // id -> alert, active ones only
let stream = null;

function el(tag, { dataset = {}, ...props } = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  Object.assign(node.dataset, dataset); // dataset is read-only: fill it instead of replacing it
  node.append(...children);
  return node;
}

function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const response = await fetch(`${API}${path}`, {
    ...options, headers: { Accept: "application/json", "Content-Type": "application/json" },
  });
  if (response.status === 401) throw new Unauthorized();
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new Error(problem.detail || `${path}: ${response.status}`);
  }
  return response.status === 204 ? null : response.json();
}

function show(view) {
  for (const id of ["login-view", "fleet-view", "device-view", "alerts-view"]) $(`#${id}`).hidden = true;
  for (const id of view) $(`#${id}`).hidden = false;
}

async function refreshFleet() {
  try {
    const { devices } = await api("/devices");
    const rows = devices.map((d) => el("tr", { dataset: { device: d.device } },
      el("td", {}, el("a", { href: `#/device/${encodeURIComponent(d.device)}` }, d.device)),
      el("td", {}, d.site),
      el("td", {}, el("span", { className: `badge ${d.health}` }, d.health)),
      el("td", { title: d.last_seen }, ago(d.last_seen)),
      el("td", { className: "values" }, Object.entries(d.last_values || {}).slice(0, 4)
        .map(([k, v]) => `${k} ${Number(v).toFixed(2)}`).join("  ")),
      el("td", {}, String(d.active_alerts)),
    ));
    $("#fleet tbody").replaceChildren(...(rows.length ? rows
      : [el("tr", {}, el("td", { colSpan: 6 }, "No devices yet."))]));
  } catch (err) {
    if (err instanceof Unauthorized) return loggedOut();
    $("#connection").textContent = `fleet unavailable (${err.message})`;
  }
}

function renderAlerts() {
  const sorted = [...alerts.values()].sort((a, b) => b.id - a.id);
  $("#alerts").replaceChildren(...sorted.map((a) => {
    const reason = a.details && a.details.reason ? ` — ${a.details.reason}` : "";
    const muted = a.suppressed ? el("p", { className: "meta" }, `Not notified: ${a.suppressed}`) : "";
    let ack;
    if (a.acknowledged_by) {
      ack = el("p", { className: "meta acked" },
        `Acknowledged by ${a.acknowledged_by}${a.ack_comment ? `: ${a.ack_comment}` : ""}`);
    } else {
      const comment = el("input", { placeholder: "comment (optional)", className: "ack-comment" });
      comment.setAttribute("aria-label", `Comment on the ${a.rule} alert of ${a.device}`);
      const button = el("button", { type: "button", onclick: () => acknowledge(a.id, comment.value) },
        "Acknowledge");
      button.setAttribute("aria-label", `Acknowledge ${a.rule} alert of ${a.device}`);
      ack = el("p", { className: "ack" }, comment, " ", button);
    }
    return el("li", { className: a.severity, dataset: { alert: a.id, device: a.device } },
      el("strong", {}, `${a.device}: ${a.rule} (${a.severity})`),
      el("p", { className: "meta" }, `${a.site} · opened ${ago(a.opened_at)} · ${a.occurrences}×${reason}`),
      muted, ack);
  }));
  $("#no-alerts").hidden = alerts.size > 0;
}

async function acknowledge(id, comment) {
  try {
    onAlert(await api(`/alerts/${id}/ack`, { method: "POST", body: JSON.stringify({ comment: comment.trim() }) }));
  } catch (err) {
    if (err instanceof Unauthorized) return loggedOut();
    window.alert(`acknowledge failed: ${err.message}`);
  }
}

function onAlert(a) {
  if (a.status === "active") alerts.set(a.id, a); else alerts.delete(a.id);
  renderAlerts();
}

async function loadAlerts() {
  const { alerts: active } = await api("/alerts?status=active&limit=500");
  alerts.clear();
  active.forEach((a) => alerts.set(a.id, a));
  renderAlerts();
}

function connect() {
  if (stream) stream.close();
  stream = new EventSource(`${API}/stream`);
  stream.onopen = () => {
    $("#connection").textContent = "live"; $("#connection").classList.add("live");
    loadAlerts().catch(() => {});
  };
  stream.onerror = () => { $("#connection").textContent = "reconnecting…"; $("#connection").classList.remove("live"); };
  for (const type of ["alert.created", "alert.updated", "alert.cleared"]) {
    stream.addEventListener(type, (e) => { onAlert(JSON.parse(e.data)); refreshFleet(); });
  }
  stream.addEventListener("device.state", () => { refreshFleet(); route(false); });
}

async function route(full = true) {
  const match = location.hash.match(/^#\/device\/(.+)$/);
  if (!match) {
    if (full) show(["fleet-view", "alerts-view"]);
    return;
  }
  if (full) show(["device-view", "alerts-view"]);
  try {
    await showDevice(api, decodeURIComponent(match[1]));
  } catch (err) {
    if (err instanceof Unauthorized) return loggedOut();
    $("#device-title").textContent = err.message;
  }
}

function loggedOut() {
  if (stream) { stream.close(); stream = null; }
  $("#user").hidden = true;
  $("#connection").textContent = "not logged in";
  show(["login-view"]);
}

async function loggedIn(me) {
  $("#user-name").textContent = `${me.name} (${me.role})`;
  $("#user").hidden = false;
  await refreshFleet();
  connect();
  route();
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("#login-error").textContent = "";
  try {
    const me = await api("/auth/login", { method: "POST", body: JSON.stringify({
      email: $("#login-email").value, password: $("#login-password").value }) });
    $("#login-password").value = "";
    await loggedIn(me);
  } catch (err) {
    $("#login-error").textContent = err instanceof Unauthorized ? "Wrong e-mail or password." : err.message;
  }
});
$("#logout").addEventListener("click", async () => { await api("/auth/logout", { method: "POST" }).catch(() => {}); loggedOut(); });
window.addEventListener("hashchange", () => route());
setInterval(refreshFleet, 10000);
api("/auth/me").then(loggedIn).catch(loggedOut);
