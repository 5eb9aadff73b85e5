// Compare runs: one chart per metric, the runs' curves overlaid (x: the logged step).
"use strict";

(function () {
  var data = JSON.parse(document.getElementById("compare-data").textContent);
  var order = data.runs.map(function (r) { return r.id; });
  document.querySelectorAll(".swatch").forEach(function (s) {
    s.style.background = seriesColor(Number(s.dataset.series));
  });
  var byMetric = {};
  data.curves.forEach(function (c) { (byMetric[c.metric] = byMetric[c.metric] || []).push(c); });
  chartsIn(document.getElementById("curves"), function (box) {
    var names = Object.keys(byMetric).sort();
    if (!names.length) {
      box.textContent = "no metric was logged by these runs";
      return;
    }
    names.forEach(function (metric) {
      var steps = {};
      byMetric[metric].forEach(function (c) { steps[c.step] = true; });
      var several = Object.keys(steps).length > 1;
      var series = byMetric[metric].map(function (c) {
        return { label: c.run_id + (several ? " · " + c.step : ""), color: order.indexOf(c.run_id),
                 xs: c.steps, ys: c.values };
      });
      lineChart(box, metric, series, { xLabel: "step" });
    });
  });
})();
