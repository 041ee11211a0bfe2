// The device page: health, the edge's explanation, charts of readings and anomaly score, health history.
import { lineChart } from "/dashboard/charts.js";

const $ = (sel) => document.querySelector(sel);
let current = null; // { name, readings }

function el(tag, props = {}, ...children) {
  const n = Object.assign(document.createElement(tag), props);
  n.append(...children);
  return n;
}

function series(body, metric) {
  if (body.resolution === "raw") {
    return body.readings.map((r) => ({ t: new Date(r.ts), v: metric === "score" ? r.score : r.values[metric] }));
  }
  return body.buckets.map((b) => ({ t: new Date(b.ts), v: metric === "score" ? b.score : b.values[metric] }));
}

function drawValues() {
  if (!current) return;
  const metric = $("#metric").value;
  lineChart($("#chart-values"), series(current.readings, metric));
  $("#values-caption").textContent = `${metric} (${current.readings.resolution}, last hour)`;
}

export async function showDevice(api, name) {
  const [device, readings, states] = await Promise.all([
    api(`/devices/${encodeURIComponent(name)}`),
    api(`/devices/${encodeURIComponent(name)}/readings`),
    api(`/devices/${encodeURIComponent(name)}/states?limit=20`),
  ]);
  current = { name, readings };
  $("#device-title").textContent = `${device.device} at ${device.site}`;
  $("#device-health").replaceChildren(el("span", { className: `badge ${device.health}` }, device.health),
    ` · last seen ${new Date(device.last_seen).toLocaleString()} · model ${device.model || "?"}`);
  const names = new Set();
  for (const r of readings.readings) Object.keys(r.values).forEach((k) => names.add(k));
  for (const b of readings.buckets) Object.keys(b.values).forEach((k) => names.add(k));
  const select = $("#metric");
  const keep = select.value;
  select.replaceChildren(...[...names].sort().map((n) => el("option", { value: n }, n)));
  if (names.has(keep)) select.value = keep;
  select.onchange = drawValues;
  drawValues();
  lineChart($("#chart-score"), series(readings, "score"), { color: "#b3261e" });
  const latest = states.states[0];
  $("#explanation").replaceChildren(latest
    ? el("p", {}, el("strong", {}, `${latest.state}: `), latest.reason || "no explanation given",
      el("ul", {}, ...(latest.contributors || []).map((c) =>
        el("li", {}, `${c.feature}: ${Number(c.value).toFixed(2)} (z ${Number(c.z).toFixed(1)})`))))
    : el("p", {}, "No health change reported yet."));
  $("#states").replaceChildren(...states.states.map((s) => el("li", {},
    `${new Date(s.ts).toLocaleString()} ${s.previous || "?"} → ${s.state}${s.reason ? `: ${s.reason}` : ""}`)));
}
