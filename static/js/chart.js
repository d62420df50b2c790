// A candlestick chart (lightweight-charts 5, served by the desk) of one instrument: history from
// /charts/<exchange>/<symbol>/candles, then live ticks over Socket.IO ("subscribe_ticks").
// Times are shown in IST: lightweight-charts draws UTC, so intraday bars are shifted by +5:30.
(function () {
  "use strict";

  var IST_SECONDS = 19800;
  var container = document.getElementById("chart");
  if (!container || typeof LightweightCharts === "undefined") return;

  var symbol = container.getAttribute("data-symbol");
  var exchange = container.getAttribute("data-exchange");
  var candlesUrl = container.getAttribute("data-candles-url");
  var picker = document.getElementById("chart-interval");
  var status = document.getElementById("chart-status");
  var ltpOut = document.getElementById("chart-ltp");
  var interval = picker ? picker.value : "5m";
  var seconds = 300;
  var last = null; // the newest bar, as drawn
  var loadSeq = 0;

  function palette() {
    var style = getComputedStyle(document.documentElement);
    function value(name, fallback) { return (style.getPropertyValue(name) || fallback).trim(); }
    return {
      bg: value("--panel", "#ffffff"), text: value("--text", "#1b1f24"), border: value("--border", "#d9dee4"),
      up: value("--ok", "#1a7f37"), down: value("--bad", "#cf222e")
    };
  }

  var colours = palette();
  var chart = LightweightCharts.createChart(container, {
    autoSize: true,
    layout: { background: { color: colours.bg }, textColor: colours.text },
    grid: { vertLines: { color: colours.border }, horzLines: { color: colours.border } },
    rightPriceScale: { borderColor: colours.border },
    timeScale: { borderColor: colours.border, timeVisible: true, secondsVisible: false }
  });
  var series = chart.addSeries(LightweightCharts.CandlestickSeries, {
    upColor: colours.up, borderUpColor: colours.up, wickUpColor: colours.up,
    downColor: colours.down, borderDownColor: colours.down, wickDownColor: colours.down
  });

  function restyle() {
    colours = palette();
    chart.applyOptions({
      layout: { background: { color: colours.bg }, textColor: colours.text },
      grid: { vertLines: { color: colours.border }, horzLines: { color: colours.border } }
    });
  }
  new MutationObserver(restyle).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  if (window.matchMedia) window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", restyle);

  function barTime(epochSeconds) {
    return interval === "D" ? epochSeconds : epochSeconds + IST_SECONDS;
  }

  function load() {
    var seq = ++loadSeq;
    status.textContent = "Loading " + interval + " candles…";
    fetch(candlesUrl + "?interval=" + encodeURIComponent(interval), {
      credentials: "same-origin", headers: { "Accept": "application/json" }
    }).then(function (response) { return response.json(); }).then(function (payload) {
      if (seq !== loadSeq) return;
      if (payload.status !== "success") {
        status.textContent = payload.message || "Could not load the candles.";
        return;
      }
      seconds = payload.seconds;
      var bars = payload.data.map(function (row) {
        return { time: barTime(row.timestamp), open: row.open, high: row.high, low: row.low, close: row.close };
      });
      series.setData(bars);
      last = bars.length ? Object.assign({}, bars[bars.length - 1]) : null;
      if (bars.length > 200) {
        chart.timeScale().setVisibleLogicalRange({ from: bars.length - 200, to: bars.length + 5 });
      } else {
        chart.timeScale().fitContent();
      }
      status.textContent = bars.length + " candles of " + interval + "; live.";
    }).catch(function () {
      if (seq === loadSeq) status.textContent = "Could not reach the desk to load the candles.";
    });
  }

  function onTick(tick) {
    if (!tick || tick.symbol !== symbol || tick.exchange !== exchange || typeof tick.ltp !== "number") return;
    if (ltpOut) ltpOut.textContent = tick.ltp.toFixed(2);
    if (!last) return;
    var at = Math.floor((tick.ltt || tick.timestamp || Date.now()) / 1000);
    var time;
    if (interval === "D") {
      var day = Math.floor((at + IST_SECONDS) / 86400) * 86400; // 00:00 UTC of the IST date
      time = day > last.time ? day : last.time;
    } else {
      var shifted = at + IST_SECONDS;
      time = shifted < last.time + seconds ? last.time
        : last.time + Math.floor((shifted - last.time) / seconds) * seconds;
    }
    if (time === last.time) {
      last.high = Math.max(last.high, tick.ltp);
      last.low = Math.min(last.low, tick.ltp);
      last.close = tick.ltp;
    } else {
      last = { time: time, open: tick.ltp, high: tick.ltp, low: tick.ltp, close: tick.ltp };
    }
    series.update(Object.assign({}, last));
  }

  // One socket per page: live.js's (window.dalalLive.socket) when it made one, else our own.
  function socket() {
    if (window.dalalLive && window.dalalLive.socket) return window.dalalLive.socket;
    if (!window.dalalSocket && typeof io === "function") window.dalalSocket = io({ transports: ["websocket", "polling"] });
    return window.dalalSocket;
  }

  function follow() {
    var live = socket();
    if (!live) {
      status.textContent += " (live updates unavailable)";
      return;
    }
    function subscribe() { live.emit("subscribe_ticks", { symbol: symbol, exchange: exchange }); }
    live.on("connect", subscribe);
    if (live.connected) subscribe();
    live.on("tick", onTick);
    window.addEventListener("pagehide", function () {
      live.emit("unsubscribe_ticks", { symbol: symbol, exchange: exchange });
    });
  }

  if (picker) {
    picker.addEventListener("change", function () {
      interval = picker.value;
      var url = new URL(window.location.href);
      url.searchParams.set("interval", interval);
      window.history.replaceState(null, "", url);
      load();
    });
  }
  load();
  follow();
})();
