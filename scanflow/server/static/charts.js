// Line charts drawn with uPlot in the theme's colours; redrawn when the theme changes.
"use strict";

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function seriesColor(index) { return cssVar("--s" + (index % 6)); }

// Align series given as {label, color, xs, ys} on the union of their x values.
function aligned(series) {
  var xs = [];
  series.forEach(function (s) { s.xs.forEach(function (x) { if (xs.indexOf(x) < 0) xs.push(x); }); });
  xs.sort(function (a, b) { return a - b; });
  var data = [xs];
  series.forEach(function (s) {
    var at = {};
    s.xs.forEach(function (x, i) { at[x] = s.ys[i]; });
    data.push(xs.map(function (x) { return x in at ? at[x] : null; }));
  });
  return data;
}

// A chart titled `title` in `parent`: series [{label, color, xs, ys, step?}], options
// {time: x is unix seconds, xLabel, yLabel}.
function lineChart(parent, title, series, options) {
  options = options || {};
  var box = document.createElement("figure");
  box.className = "chart";
  box.dataset.chart = title;
  var caption = document.createElement("figcaption");
  caption.textContent = title;  // text, never markup
  box.appendChild(caption);
  parent.appendChild(box);
  var axis = { stroke: cssVar("--fg"), grid: { stroke: cssVar("--line") }, ticks: { stroke: cssVar("--line") } };
  var yAxis = Object.assign({}, axis, options.yLabel ? { label: options.yLabel } : {});
  var plot = new uPlot({
    width: Math.max(260, box.clientWidth - 8),
    height: options.height || 200,
    scales: { x: { time: !!options.time } },
    legend: { show: true },
    axes: [Object.assign({}, axis, options.xLabel ? { label: options.xLabel } : {}), yAxis],
    series: [{ label: options.xLabel || "x" }].concat(series.map(function (s, i) {
      return {
        label: s.label,
        stroke: seriesColor(s.color == null ? i : s.color),
        width: 2,
        spanGaps: true,
        paths: s.step ? uPlot.paths.stepped({ align: 1 }) : undefined,
      };
    })),
  }, aligned(series), box);
  return plot;
}

// Call `draw(container)` now and again, on an emptied container, whenever the theme changes.
function chartsIn(container, draw) {
  function again() {
    container.textContent = "";
    draw(container);
  }
  again();
  document.addEventListener("scanflow:theme", again);
}
