// AUREON's live dashboard: SVG line charts of the rounds, fed by the run's WebSocket.
"use strict";

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const SVG = "http://www.w3.org/2000/svg";
const CHARTS = [
  { id: "accuracy", title: "test accuracy", series: (p) => ({ accuracy: p.accuracy }) },
  { id: "loss", title: "test loss", series: (p) => ({ loss: p.loss }) },
  { id: "epsilon", title: "epsilon spent per client", series: (p) => Object.assign({ max: p.epsilon_max }, p.epsilon) },
  { id: "bytes", title: "MB per round", series: (p) => ({ up: p.bytes_up / 1e6, down: p.bytes_down / 1e6 }) },
  { id: "clients", title: "clients", series: (p) => ({ joined: p.joined, failed: p.failed, rejected: p.rejected }) },
];
const state = { points: [], numRounds: 0, finished: false };

function el(tag, attrs, parent) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function drawChart(spec) {
  let box = document.getElementById("chart-" + spec.id);
  if (!box) {
    box = document.createElement("div");
    box.className = "chart";
    box.id = "chart-" + spec.id;
    document.getElementById("charts").appendChild(box);
  }
  box.innerHTML = "<h2>" + spec.title + "</h2>";
  const W = 360, H = 180, L = 44, R = 8, T = 8, B = 22;
  const svg = el("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}` }, box);
  const lines = {};
  for (const p of state.points) {
    for (const [name, y] of Object.entries(spec.series(p))) {
      if (y === null || y === undefined || !isFinite(y)) continue;
      (lines[name] = lines[name] || []).push([p.round, y]);
    }
  }
  const all = Object.values(lines).flat();
  const xmax = Math.max(state.numRounds, ...state.points.map((p) => p.round), 1);
  let ymin = Math.min(0, ...all.map((q) => q[1])), ymax = Math.max(...all.map((q) => q[1]), 1e-9);
  if (spec.id === "accuracy") { ymin = 0; ymax = 1; }
  const sx = (x) => L + ((x - 0) / (xmax || 1)) * (W - L - R);
  const sy = (y) => H - B - ((y - ymin) / (ymax - ymin || 1)) * (H - T - B);
  el("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#999" }, svg);
  el("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#999" }, svg);
  for (const frac of [0, 0.5, 1]) {
    const v = ymin + frac * (ymax - ymin);
    const t = el("text", { x: L - 4, y: sy(v) + 4, "text-anchor": "end", "font-size": 10 }, svg);
    t.textContent = Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
  }
  const xl = el("text", { x: W - R, y: H - 6, "text-anchor": "end", "font-size": 10 }, svg);
  xl.textContent = "round " + xmax;
  const legend = document.createElement("div");
  legend.className = "legend";
  Object.keys(lines).forEach((name, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = lines[name];
    el("polyline", { points: pts.map(([x, y]) => sx(x) + "," + sy(y)).join(" "), fill: "none", stroke: color, "stroke-width": 2 }, svg);
    for (const [x, y] of pts) el("circle", { cx: sx(x), cy: sy(y), r: 3, fill: color, class: "point", "data-round": x }, svg);
    const key = document.createElement("span");
    key.style.color = color;
    key.textContent = "\u25a0 " + name;
    legend.appendChild(key);
  });
  box.appendChild(legend);
}

function fmt(v, digits) {
  return v === null || v === undefined ? "-" : Number(v).toFixed(digits);
}

function render() {
  CHARTS.forEach(drawChart);
  const body = document.querySelector("#rounds tbody");
  body.innerHTML = "";
  for (const p of state.points) {
    const row = document.createElement("tr");
    row.className = "round-row";
    row.dataset.round = p.round;
    row.innerHTML = [p.round, fmt(p.accuracy, 4), fmt(p.loss, 4), fmt(p.epsilon_max, 3), fmt(p.bytes_up / 1e6, 3),
      fmt(p.bytes_down / 1e6, 3), p.joined, p.failed, p.rejected, fmt(p.seconds, 1)].map((c) => "<td>" + c + "</td>").join("");
    body.appendChild(row);
  }
  const last = state.points.length ? state.points[state.points.length - 1].round : 0;
  const status = document.getElementById("status");
  status.textContent = (state.finished ? "finished: " : "running: ") + last + " of " + state.numRounds + " rounds";
  status.dataset.rounds = String(last);
  status.dataset.finished = String(state.finished);
}

function connect() {
  const url = new URL("feed", window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url);
  socket.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "history") {
      state.points = msg.points;
      state.numRounds = msg.num_rounds;
      state.finished = msg.finished;
      document.getElementById("title").textContent = msg.title;
    } else if (msg.type === "round") {
      state.points = state.points.filter((p) => p.round !== msg.point.round).concat([msg.point]);
    } else if (msg.type === "finish") {
      state.finished = true;
    }
    render();
  };
  socket.onclose = () => {
    const status = document.getElementById("status");
    if (!state.finished) {
      status.textContent += " (disconnected; retrying)";
      setTimeout(connect, 1000);
    }
  };
}

render();
connect();
