// A decision's lineage: evidence charts drawn when a step is opened; approve, reject and revert.
"use strict";

(function () {
  var steps = JSON.parse(document.getElementById("lineage-data").textContent).steps;

  function draw(index, box) {
    var e = steps[index].evidence;
    if (steps[index].kind === "data" && (e.window_scores || []).length) {
      var w = e.window_scores;
      lineChart(box, "drift score per window", [
        { label: "score", xs: w.map(function (x) { return x.start; }), ys: w.map(function (x) { return x.score; }), color: 4 },
      ], { time: true, xLabel: "window start" });
    }
    if (steps[index].kind === "drift" && (e.per_feature || []).length) {
      var f = e.per_feature;
      lineChart(box, "-log10 p per feature (higher: more drift)", [
        { label: "-log10 p", xs: f.map(function (_, i) { return i; }), color: 1,
          ys: f.map(function (x) { return x.p > 0 ? -Math.log10(x.p) : null; }) },
        { label: "-log10 threshold", xs: f.map(function (_, i) { return i; }), color: 4,
          ys: f.map(function (x) { return x.threshold > 0 ? -Math.log10(x.threshold) : null; }) },
      ], { xLabel: "feature (most drifted first)" });
    }
  }

  document.querySelectorAll("#lineage > li > details").forEach(function (details) {
    var drawn = false;
    details.addEventListener("toggle", function () {
      var box = details.querySelector(".step-charts");
      if (!details.open || drawn || !box) return;
      drawn = true;
      chartsIn(box, function (container) { draw(Number(details.dataset.index), container); });
    });
  });

  function body(id) {
    if (id !== "reject") return {};
    var reason = document.getElementById("reject-reason").value.trim();
    return { reason: reason || null };
  }

  ["approve", "reject", "revert"].forEach(function (id) {
    var button = document.getElementById(id);
    if (!button) return;
    button.addEventListener("click", async function () {
      try {
        await act(button.dataset.url, body(id));
        button.hidden = true;
        window.setTimeout(function () { window.location.reload(); }, 800);
      } catch (e) { /* shown in the flash line */ }
    });
  });
})();
