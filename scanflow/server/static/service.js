// The service view: rates, latency, workers and the version over time, refreshed as the
// server samples the service.
"use strict";

(function () {
  var history = JSON.parse(document.getElementById("history-data").textContent);
  var box = document.getElementById("service-charts");
  var url = "/api/apps/" + encodeURIComponent(history.app) + "/services/" +
    encodeURIComponent(history.name) + "/history";

  function series(label, key, color, step) {
    var xs = [], ys = [];
    history.points.forEach(function (p) {
      xs.push(p.at);
      ys.push(p[key] == null ? null : Number(p[key]));
    });
    return { label: label, xs: xs, ys: ys, color: color, step: step };
  }

  function draw(container) {
    var time = { time: true, xLabel: "time" };
    lineChart(container, "requests/s", [series("requests/s", "requests_per_s", 0)], time);
    lineChart(container, "errors/s", [series("errors/s", "errors_per_s", 4)], time);
    lineChart(container, "p95 latency (ms)", [series("p95 ms", "p95_ms", 1)], time);
    lineChart(container, "workers", [series("workers", "workers", 2, true),
      series("target", "workers_target", 5, true)], time);
    lineChart(container, "model version", [series("version", "model_version", 3, true)], time);
  }

  chartsIn(box, draw);
  setInterval(async function () {
    var response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) return;
    history = await response.json();
    box.textContent = "";
    draw(box);
  }, Math.max(2000, history.interval * 1000));

  var scale = document.getElementById("scale");
  scale.addEventListener("click", async function () {
    try {
      await act(scale.dataset.url, { workers: Number(document.getElementById("workers").value) });
    } catch (e) { /* shown in the flash line */ }
  });
})();
