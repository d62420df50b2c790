// Live updates: one Socket.IO connection per page, its events re-dispatched on `document` as
// DOM CustomEvents ("dalal:order_update", ...; the payload is event.detail) for page scripts.
// The server pushes; nothing here polls. Safe to include twice: the second copy does nothing.
(function () {
  "use strict";
  if (window.dalalLive || typeof window.io !== "function") return;

  var EVENTS = ["order_update", "trade_update", "position_update", "funds_update",
    "action_center_update"];
  var TICK_EVENTS = ["tick", "market_tick"]; // market ticks, when the server sends them

  function dispatch(name, detail) {
    document.dispatchEvent(new CustomEvent(name, { detail: detail }));
  }

  var socket = window.io({ transports: ["websocket", "polling"] });
  EVENTS.forEach(function (name) {
    socket.on(name, function (payload) { dispatch("dalal:" + name, payload); });
  });
  TICK_EVENTS.forEach(function (name) {
    socket.on(name, function (payload) { dispatch("dalal:tick", payload); });
  });
  var everConnected = false;
  socket.on("connect", function () {
    document.documentElement.setAttribute("data-live", "on");
    dispatch("dalal:live", { connected: true, reconnected: everConnected });
    everConnected = true;
  });
  socket.on("disconnect", function () {
    document.documentElement.setAttribute("data-live", "off");
    dispatch("dalal:live", { connected: false });
  });

  window.dalalLive = { socket: socket, dispatch: dispatch };
})();
