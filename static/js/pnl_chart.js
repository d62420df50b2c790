// The dashboard's intraday P&L curve (lightweight-charts, served by the desk): the points of
// today the server recorded, then one more on every funds_update push. Times read as IST.
(function () {
  "use strict";
  var box = document.getElementById("pnl-chart");
  var source = document.getElementById("pnl-points");
  if (!box || !source || !window.LightweightCharts) return;
  var IST_OFFSET = 19800; // the chart draws UTC: shift epoch seconds so the axis reads IST

  function colour(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }
  function themed() {
    return {
      layout: { background: { color: "transparent" }, textColor: colour("--text", "#1b1f24") },
      grid: { vertLines: { color: colour("--border", "#d9dee4") },
        horzLines: { color: colour("--border", "#d9dee4") } },
    };
  }
  var chart = LightweightCharts.createChart(box, Object.assign({
    autoSize: true,
    timeScale: { timeVisible: true, secondsVisible: false },
    rightPriceScale: { borderVisible: false },
  }, themed()));
  var series = chart.addSeries(LightweightCharts.BaselineSeries, {
    baseValue: { type: "price", price: 0 },
    topLineColor: colour("--ok", "#1a7f37"),
    bottomLineColor: colour("--bad", "#cf222e"),
    lineWidth: 2,
    priceFormat: { type: "price", precision: 2, minMove: 0.01 },
  });
  var points = [];
  try { points = JSON.parse(source.textContent) || []; } catch (error) { points = []; }
  series.setData(points);
  chart.timeScale().fitContent();
  var last = points.length ? points[points.length - 1].time : 0;

  document.addEventListener("dalal:funds_update", function (event) {
    var funds = event.detail || {};
    var value = Math.round((Number(funds.today_realized_pnl || 0) + Number(funds.m2munrealized || 0)) * 100) / 100;
    var time = Math.max(Math.floor(Date.now() / 1000) + IST_OFFSET, last);
    last = time;
    series.update({ time: time, value: value });
    var note = document.getElementById("pnl-chart-note");
    if (note) note.textContent = "Times in IST; a point for every change in funds.";
  });
  new MutationObserver(function () { chart.applyOptions(themed()); })
    .observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
})();
