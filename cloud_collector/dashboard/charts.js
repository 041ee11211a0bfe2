// Small SVG line charts: no library, nothing fetched from elsewhere.
const NS = "http://www.w3.org/2000/svg";
const W = 720, H = 180, PAD = 36;

function node(tag, attrs = {}, text = "") {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  if (text) n.textContent = text;
  return n;
}

// points: [{t: Date, v: number}] in any order; draws a polyline with min/max and time labels.
export function lineChart(svg, points, { color = "#1a73e8", empty = "no data in this window" } = {}) {
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.replaceChildren();
  const pts = points.filter((p) => Number.isFinite(p.v)).sort((a, b) => a.t - b.t);
  if (!pts.length) {
    svg.append(node("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, empty));
    return;
  }
  const t0 = pts[0].t.getTime(), t1 = Math.max(pts[pts.length - 1].t.getTime(), t0 + 1);
  let lo = Math.min(...pts.map((p) => p.v)), hi = Math.max(...pts.map((p) => p.v));
  if (hi === lo) { hi += 1; lo -= 1; }
  const x = (t) => PAD + ((t - t0) / (t1 - t0)) * (W - 2 * PAD);
  const y = (v) => H - PAD / 2 - ((v - lo) / (hi - lo)) * (H - PAD);
  svg.append(node("line", { x1: PAD, y1: H - PAD / 2, x2: W - PAD, y2: H - PAD / 2, class: "axis" }));
  svg.append(node("text", { x: 2, y: y(hi) + 4, class: "label" }, hi.toPrecision(3)));
  svg.append(node("text", { x: 2, y: y(lo), class: "label" }, lo.toPrecision(3)));
  svg.append(node("text", { x: PAD, y: H - 2, class: "label" }, new Date(t0).toLocaleTimeString()));
  svg.append(node("text", { x: W - PAD, y: H - 2, class: "label", "text-anchor": "end" },
    new Date(t1).toLocaleTimeString()));
  const line = pts.map((p) => `${x(p.t.getTime()).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
  svg.append(node("polyline", { points: line, fill: "none", stroke: color, "stroke-width": 2 }));
}
