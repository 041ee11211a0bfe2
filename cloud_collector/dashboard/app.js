// The fleet dashboard: a table refreshed from /api/v1/devices, alerts kept live from the SSE stream.
const API = "/api/v1";
const fleetBody = document.querySelector("#fleet tbody");
const alertList = document.querySelector("#alerts");
const noAlerts = document.querySelector("#no-alerts");
const connection = document.querySelector("#connection");
const who = document.querySelector("#who");
const alerts = new Map(); // id -> alert, active ones only

who.value = localStorage.getItem("signalcraft.who") || "";
who.addEventListener("change", () => localStorage.setItem("signalcraft.who", who.value.trim()));

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
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

function keyReadings(values) {
  return Object.entries(values || {}).slice(0, 4)
    .map(([name, v]) => `${name} ${Number(v).toFixed(2)}`).join("  ");
}

async function getJSON(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

async function refreshFleet() {
  try {
    const { devices } = await getJSON(`${API}/devices`);
    const rows = devices.map((d) => el("tr", {},
      el("td", {}, d.device),
      el("td", {}, d.site),
      el("td", {}, el("span", { className: `badge ${d.health}` }, d.health)),
      el("td", { title: d.last_seen }, ago(d.last_seen)),
      el("td", { className: "values" }, keyReadings(d.last_values)),
      el("td", {}, String(d.active_alerts)),
    ));
    fleetBody.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colSpan: 6 }, "No devices yet."))]));
  } catch (err) {
    connection.textContent = `fleet unavailable (${err.message})`;
  }
}

function renderAlerts() {
  const sorted = [...alerts.values()].sort((a, b) => b.opened_at.localeCompare(a.opened_at));
  alertList.replaceChildren(...sorted.map((a) => {
    const ack = a.acknowledged_by
      ? el("p", { className: "meta" }, `Acknowledged by ${a.acknowledged_by}${a.ack_comment ? `: ${a.ack_comment}` : ""}`)
      : el("button", { type: "button", onclick: () => acknowledge(a.id) }, "Acknowledge");
    if (!a.acknowledged_by) ack.setAttribute("aria-label", `Acknowledge ${a.rule} alert of ${a.device}`);
    const reason = a.details && a.details.reason ? ` — ${a.details.reason}` : "";
    return el("li", { className: a.severity },
      el("strong", {}, `${a.device}: ${a.rule} (${a.severity})`),
      el("p", { className: "meta" }, `${a.site} · opened ${ago(a.opened_at)} · ${a.occurrences}×${reason}`),
      ack);
  }));
  noAlerts.hidden = alerts.size > 0;
}

async function acknowledge(id) {
  const by = who.value.trim();
  if (!by) { who.focus(); who.reportValidity(); return; }
  const comment = prompt("Comment (optional)") || "";
  const response = await fetch(`${API}/alerts/${id}/ack`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ by, comment }),
  });
  if (response.ok) onAlert(await response.json());
  else alert((await response.json()).detail || `acknowledge failed (${response.status})`);
}

function onAlert(a) {
  if (a.status === "active") alerts.set(a.id, a); else alerts.delete(a.id);
  renderAlerts();
}

async function loadAlerts() {
  const { alerts: active } = await getJSON(`${API}/alerts?status=active`);
  alerts.clear();
  active.forEach((a) => alerts.set(a.id, a));
  renderAlerts();
}

function connect() {
  const stream = new EventSource(`${API}/stream`);
  stream.onopen = () => { connection.textContent = "live"; connection.classList.add("live"); loadAlerts(); };
  stream.onerror = () => { connection.textContent = "reconnecting…"; connection.classList.remove("live"); };
  for (const type of ["alert.created", "alert.updated", "alert.cleared"]) {
    stream.addEventListener(type, (e) => { onAlert(JSON.parse(e.data)); refreshFleet(); });
  }
  stream.addEventListener("device.state", refreshFleet);
}

refreshFleet();
setInterval(refreshFleet, 10000);
connect();
