// The run view: the DAG laid out by dagre, kept live by server-sent events, a step panel.
"use strict";

var SVG = "http://www.w3.org/2000/svg";
var NODE_W = 170, NODE_H = 46;
var run = JSON.parse(document.getElementById("run-data").textContent);
var appName = JSON.parse(document.getElementById("run-app").textContent);
var base = "/api/apps/" + encodeURIComponent(appName) + "/runs/" + encodeURIComponent(run.id);
var nodes = {};
var selected = null;
var events = null;

function el(name, attrs, parent) {
  var node = document.createElementNS(SVG, name);
  Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
  if (parent) parent.appendChild(node);
  return node;
}

function fmt(seconds) { return seconds == null ? "" : seconds.toFixed(1) + "s"; }

function drawDag() {
  var g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 46, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(function () { return {}; });
  run.steps.forEach(function (s) { g.setNode(s.name, { width: NODE_W, height: NODE_H }); });
  run.steps.forEach(function (s) { s.depends_on.forEach(function (d) { g.setEdge(d, s.name); }); });
  dagre.layout(g);
  var svg = document.getElementById("dag");
  var size = g.graph();
  svg.setAttribute("viewBox", "0 0 " + Math.max(size.width, 200) + " " + Math.max(size.height, 60));
  svg.style.maxHeight = Math.max(size.height, 60) * 1.5 + "px";
  g.edges().forEach(function (e) {
    var pts = g.edge(e).points.map(function (p) { return p.x + "," + p.y; }).join(" ");
    el("polyline", { points: pts, class: "edge" }, svg);
  });
  g.nodes().forEach(function (name) {
    var n = g.node(name);
    var group = el("g", { class: "node", "data-step": name, tabindex: "0",
      transform: "translate(" + (n.x - NODE_W / 2) + "," + (n.y - NODE_H / 2) + ")" }, svg);
    el("rect", { width: NODE_W, height: NODE_H, rx: 6 }, group);
    var title = el("text", { x: 10, y: 19, class: "node-name" }, group);
    title.textContent = name;  // text, never markup
    var sub = el("text", { x: 10, y: 36, class: "node-sub" }, group);
    group.addEventListener("click", function () { select(name); });
    nodes[name] = { group: group, sub: sub };
  });
}

function paint() {
  var status = document.getElementById("run-status");
  status.textContent = run.status;
  status.className = "state state-" + run.status;
  document.getElementById("run-error").textContent = run.error || "";
  var ended = ["failed", "cancelled", "interrupted"].indexOf(run.status) >= 0;
  document.getElementById("retry").hidden = !ended;
  document.getElementById("cancel").hidden = ["pending", "running"].indexOf(run.status) < 0;
  run.steps.forEach(function (s) {
    var n = nodes[s.name];
    if (!n) return;
    n.group.setAttribute("class", "node state-" + s.status + (s.name === selected ? " selected" : ""));
    n.group.dataset.status = s.status;
    var tries = s.attempts.length > 1 ? " · " + s.attempts.length + " tries" : "";
    n.sub.textContent = s.status + (s.duration != null ? " · " + fmt(s.duration) : "") + tries;
  });
  if (selected) showStep(selected, false);
}

function showStep(name, loadLog) {
  var step = run.steps.find(function (s) { return s.name === name; });
  if (!step) return;
  document.getElementById("step-title").textContent = "Step " + name;
  document.getElementById("step-detail").hidden = false;
  document.getElementById("step-state").textContent =
    step.status + (step.error ? ": " + step.error : "") + (step.cached_from ? " (cached from " + step.cached_from + ")" : "");
  var body = document.querySelector("#attempts tbody");
  body.replaceChildren();
  step.attempts.forEach(function (a) {
    var tr = document.createElement("tr");
    [a.number, a.exit_code == null ? "" : a.exit_code, fmt(a.duration), a.error || ""].forEach(function (v) {
      var td = document.createElement("td"); td.textContent = String(v); tr.appendChild(td);
    });
    body.appendChild(tr);
  });
  if (loadLog) { loadArtifacts(name); loadLogs(name); }
}

function select(name) {
  selected = name;
  paint();
  showStep(name, true);
}

async function loadArtifacts(name) {
  var list = document.getElementById("artifacts");
  list.replaceChildren();
  var response = await fetch(base + "/steps/" + encodeURIComponent(name) + "/artifacts", { credentials: "same-origin" });
  if (!response.ok) return;
  (await response.json()).forEach(function (path) {
    var li = document.createElement("li");
    var a = document.createElement("a");
    a.href = base + "/steps/" + encodeURIComponent(name) + "/artifacts/" + path.split("/").map(encodeURIComponent).join("/");
    a.textContent = path;
    li.appendChild(a); list.appendChild(li);
  });
}

var LOG_LIMIT = 1 << 20;  // show the first MiB; the rest stays one click away

async function loadLogs(name) {
  var pre = document.getElementById("log");
  pre.textContent = "";
  var url = base + "/logs?step=" + encodeURIComponent(name);
  var response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok || !response.body) { pre.textContent = "(no log)"; return; }
  var reader = response.body.getReader();
  var decoder = new TextDecoder();
  var shown = 0;
  for (;;) {
    var part = await reader.read();
    if (part.done) break;
    var text = decoder.decode(part.value, { stream: true });
    var room = LOG_LIMIT - shown;  // a chunk never carries the page past the limit
    pre.append(document.createTextNode(text.slice(0, room)));  // text, never markup
    shown += Math.min(text.length, room);
    if (text.length > room) {
      reader.cancel();
      var more = document.createElement("a");
      more.href = url; more.textContent = "\n… the log goes on: open it whole";
      pre.appendChild(more);
      break;
    }
  }
}

function follow() {
  if (events) events.close();
  events = new EventSource(base + "/events");
  events.addEventListener("run", function (e) {
    run = JSON.parse(e.data);
    paint();
  });
  events.addEventListener("end", function () { events.close(); events = null; });
  events.onerror = function () { if (events && events.readyState === 2) events = null; };
}

document.addEventListener("DOMContentLoaded", function () {
  drawDag();
  paint();
  follow();
  document.getElementById("retry").addEventListener("click", async function (e) {
    try { await act(e.target.dataset.url); follow(); } catch (err) { /* flash shows it */ }
  });
  document.getElementById("cancel").addEventListener("click", async function (e) {
    try { await act(e.target.dataset.url); } catch (err) { /* flash shows it */ }
  });
});
