// The trader's books in place: rows and figures follow the pushes live.js re-dispatches
// (dalal:order_update, trade_update, position_update, funds_update, tick), and the pages' action
// forms (data-ajax) are sent with fetch() so the page never reloads. Payloads have the REST
// API's shapes (blueprints/api/serialize.py); numbers are shown as the server renders them.
(function () {
  "use strict";
  if (window.dalalBooks) return;
  // Shared with page scripts that build rows of their own (action_center.js).
  window.dalalBooks = { el: el, csrfToken: csrfToken, syncEmpty: syncEmpty };

  var MINUS = "\u2212";
  var grouped = new Intl.NumberFormat("en-IN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

  function num(value) {
    var n = Number(value);
    return isFinite(n) ? n : 0;
  }
  function cents(value) {
    return Math.round(num(value) * 100) / 100;
  }
  function rupees(value) {
    var n = cents(value);
    var text = grouped.format(Math.abs(n));
    return (n < 0 ? MINUS : "") + text;
  }
  function signed(value) {
    var n = cents(value);
    return (n > 0 ? "+" : "") + rupees(n);
  }
  function whole(value) {
    var n = Math.trunc(num(value));
    return n < 0 ? MINUS + String(-n) : String(n);
  }
  function trend(value) {
    var n = cents(value);
    return n > 0 ? "up" : n < 0 ? "down" : "flat";
  }
  function orDash(value) {
    return num(value) ? rupees(value) : "\u2014";
  }
  function setText(root, field, text, trendValue) {
    root.querySelectorAll('[data-field="' + field + '"]').forEach(function (el) {
      el.textContent = text;
      if (trendValue !== undefined) {
        el.classList.remove("up", "down", "flat");
        el.classList.add(trend(trendValue));
      }
    });
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "className") node.className = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) return meta.getAttribute("content");
    var input = document.querySelector('input[name="csrf_token"]');
    return input ? input.value : "";
  }
  function hiddenInputs(fields) {
    return Object.keys(fields).map(function (name) {
      return el("input", { type: "hidden", name: name, value: fields[name] });
    });
  }
  function symbolCell(symbol, exchange) {
    return el("td", {}, [symbol + " ", el("span", { className: "muted", text: exchange })]);
  }
  function numCell(field, text, trendValue) {
    var cell = el("td", { className: "num" + (trendValue !== undefined ? " " + trend(trendValue) : ""),
      "data-field": field, text: text });
    return cell;
  }
  function syncEmpty(tbody) {
    var empty = tbody.querySelector("tr.empty");
    if (!empty) return;
    empty.hidden = tbody.querySelectorAll("tr:not(.empty)").length > 0;
  }
  function keepFocus(table) {
    // The focused control was rebuilt: leave focus on the table's scroll region, not the body.
    var wrap = table.closest(".table-wrap");
    if (wrap) wrap.focus();
  }
  function cssEscape(text) {
    return window.CSS && CSS.escape ? CSS.escape(String(text)) : String(text).replace(/"/g, '\\"');
  }

  // ------------------------------------------------------------------------------ orders

  var LIVE_STATUSES = ["open", "trigger pending"];

  function orderActions(order, back) {
    var cell = el("td", { className: "row-actions", "data-field": "actions" });
    if (LIVE_STATUSES.indexOf(order.order_status) < 0) return cell;
    cell.appendChild(el("button", {
      type: "button", className: "small", "data-action": "modify", "data-order-id": order.orderid,
      "data-quantity": order.quantity, "data-pricetype": order.pricetype, "data-price": order.price,
      "data-trigger-price": order.trigger_price, text: "Modify",
    }));
    cell.appendChild(document.createTextNode(" "));
    var form = el("form", { method: "post", className: "inline", "data-ajax": "",
      action: "/orders/" + encodeURIComponent(order.orderid) + "/cancel" },
      hiddenInputs({ csrf_token: csrfToken(), next: back }));
    form.appendChild(el("button", { type: "submit", className: "small danger", text: "Cancel" }));
    cell.appendChild(form);
    return cell;
  }
  function statusCell(order) {
    var status = order.order_status;
    var cell = el("td", {}, [el("span", { className: "badge status-" + status.replace(/ /g, "-"),
      "data-field": "status", text: status })]);
    if (order.rejection_reason) {
      cell.appendChild(el("span", { className: "muted reason", "data-field": "rejection_reason",
        text: order.rejection_reason }));
    }
    return cell;
  }
  function origin(order) {
    // Where the order came from and which algorithm sent it (SEBI's algo tagging).
    return [order.source, order.strategy, order.algo_id].filter(Boolean).join(" \u00b7 ");
  }
  function orderRow(order, withActions, back) {
    var row = el("tr", { "data-order-id": order.orderid }, [
      el("td", { "data-field": "time", text: String(order.timestamp || "").slice(11) }),
      el("td", {}, [el("code", { text: order.orderid }), el("span", {
        className: "muted reason", "data-field": "origin", text: origin(order) })]),
      symbolCell(order.symbol, order.exchange),
      el("td", { className: "side-" + String(order.action).toLowerCase(), text: order.action }),
      el("td", { "data-field": "pricetype", text: order.pricetype }),
      el("td", { text: order.product }),
      numCell("quantity", String(order.quantity)),
      numCell("filled_quantity", String(order.filled_quantity)),
      numCell("price", orDash(order.price)),
      numCell("trigger_price", orDash(order.trigger_price)),
      numCell("average_price", orDash(order.average_price)),
      statusCell(order),
    ]);
    if (withActions) row.appendChild(orderActions(order, back));
    return row;
  }
  function updateOrder(order) {
    if (!order || !order.orderid) return;
    document.querySelectorAll('table[data-book="orders"]').forEach(function (table) {
      var withActions = table.getAttribute("data-actions") !== "no";
      var back = table.getAttribute("data-back") || "orderbook.index";
      var fresh = orderRow(order, withActions, back);
      var row = table.querySelector('tr[data-order-id="' + cssEscape(order.orderid) + '"]');
      var tbody = table.tBodies[0];
      if (row) {
        var focused = row.contains(document.activeElement);
        // Replace the cells, keep the row element: tests and screen readers hold on to it.
        while (row.firstChild) row.removeChild(row.firstChild);
        while (fresh.firstChild) row.appendChild(fresh.firstChild);
        if (focused) keepFocus(table);
      } else {
        tbody.insertBefore(fresh, tbody.firstChild);
      }
      syncEmpty(tbody);
    });
  }

  // ------------------------------------------------------------------------------ trades

  function updateTrade(trade) {
    var table = document.querySelector('table[data-book="trades"]');
    if (!table || !trade || !trade.tradeid) return;
    if (table.querySelector('tr[data-trade-id="' + cssEscape(trade.tradeid) + '"]')) return;
    var charges = trade.charges || {};
    var cells = [
      el("td", { text: String(trade.timestamp || "").slice(11) }),
      el("td", {}, [el("code", { text: trade.tradeid })]),
      el("td", {}, [el("code", { text: trade.orderid })]),
      symbolCell(trade.symbol, trade.exchange),
      el("td", { className: "side-" + String(trade.action).toLowerCase(), text: trade.action }),
      el("td", { text: trade.product }),
      numCell("quantity", String(trade.quantity)),
      numCell("average_price", rupees(trade.average_price)),
      numCell("trade_value", rupees(trade.trade_value)),
    ];
    ["brokerage", "stt", "exchange_charges", "sebi_fees", "stamp_duty", "gst", "dp_charges"]
      .forEach(function (key) { cells.push(numCell(key, rupees(charges[key]))); });
    cells.push(numCell("total_charges", rupees(trade.total_charges)));
    var tbody = table.tBodies[0];
    tbody.insertBefore(el("tr", { "data-trade-id": trade.tradeid }, cells), tbody.firstChild);
    syncEmpty(tbody);
  }

  // ------------------------------------------------------------------------------ positions

  function positionSelector(symbol, exchange, product) {
    var parts = ['tr[data-symbol="' + cssEscape(symbol) + '"]',
      '[data-exchange="' + cssEscape(exchange) + '"]'];
    if (product) parts.push('[data-product="' + cssEscape(product) + '"]');
    return parts.join("");
  }
  function closeCell(position, back) {
    var cell = el("td", { className: "row-actions", "data-field": "actions" });
    if (!num(position.quantity)) return cell;
    var form = el("form", { method: "post", className: "inline", "data-ajax": "", action: "/positions/close" },
      hiddenInputs({ csrf_token: csrfToken(), next: back, symbol: position.symbol,
        exchange: position.exchange, product: position.product }));
    form.appendChild(el("button", { type: "submit", className: "small", text: "Close" }));
    cell.appendChild(form);
    return cell;
  }
  function positionCells(position, back) {
    return [
      symbolCell(position.symbol, position.exchange),
      el("td", { text: position.product }),
      numCell("quantity", whole(position.quantity)),
      numCell("average_price", rupees(position.average_price)),
      numCell("ltp", rupees(position.ltp)),
      numCell("realised", signed(position.today_realized_pnl), position.today_realized_pnl),
      numCell("unrealised", signed(position.unrealized_pnl), position.unrealized_pnl),
      numCell("pnl", signed(position.pnl), position.pnl),
      closeCell(position, back),
    ];
  }
  function updatePosition(position) {
    if (!position || !position.symbol) return;
    document.querySelectorAll('table[data-book="positions"]').forEach(function (table) {
      var back = table.getAttribute("data-back") || "positions.index";
      var row = table.querySelector(positionSelector(position.symbol, position.exchange, position.product));
      var tbody = table.tBodies[0];
      if (!row) {
        if (!num(position.quantity)) return; // nothing to show for a flat position not listed
        row = el("tr", { "data-symbol": position.symbol, "data-exchange": position.exchange,
          "data-product": position.product });
        tbody.insertBefore(row, tbody.firstChild);
      }
      row.setAttribute("data-average", position.average_price);
      row.setAttribute("data-realised", position.today_realized_pnl);
      row.setAttribute("data-lot", position.lot_size || 1);
      var focused = row.contains(document.activeElement);
      while (row.firstChild) row.removeChild(row.firstChild);
      positionCells(position, back).forEach(function (cell) { row.appendChild(cell); });
      if (focused) keepFocus(table);
      syncEmpty(tbody);
    });
    if (num(position.quantity)) follow(position.symbol, position.exchange);
  }
  // Open positions follow their instrument's ticks (realtime.py: subscribe_ticks), so MTM moves
  // with the market between fills. Socket.IO buffers emits made before it connects.
  var followed = {};
  function follow(symbol, exchange) {
    var key = exchange + ":" + symbol;
    if (followed[key] || !window.dalalLive) return;
    followed[key] = { symbol: symbol, exchange: exchange };
    window.dalalLive.socket.emit("subscribe_ticks", followed[key]);
  }
  function followOpenPositions() {
    document.querySelectorAll('table[data-book="positions"] tr[data-symbol]').forEach(function (row) {
      var quantity = row.querySelector('[data-field="quantity"]');
      if (quantity && quantity.textContent.trim() !== "0") {
        follow(row.getAttribute("data-symbol"), row.getAttribute("data-exchange"));
      }
    });
  }
  document.addEventListener("dalal:live", function (event) {
    if (!event.detail || !event.detail.reconnected || !window.dalalLive) return;
    Object.keys(followed).forEach(function (key) {
      window.dalalLive.socket.emit("subscribe_ticks", followed[key]);
    });
  });

  function applyTick(tick) {
    // Marks open positions to a new price: unrealised = (ltp - average) x net quantity.
    if (!tick) return;
    var data = tick.data || tick;
    var symbol = data.symbol, exchange = data.exchange;
    var ltp = data.ltp !== undefined ? data.ltp : data.last_price;
    if (!symbol || !exchange || ltp === undefined) return;
    document.querySelectorAll(positionSelector(symbol, exchange)).forEach(function (row) {
      if (!row.closest('table[data-book="positions"]')) return;
      var qtyCell = row.querySelector('[data-field="quantity"]');
      var quantity = num(String(qtyCell ? qtyCell.textContent : "0").replace(MINUS, "-"));
      if (!quantity) return;
      var unrealised = (num(ltp) - num(row.getAttribute("data-average"))) * quantity;
      var total = num(row.getAttribute("data-realised")) + unrealised;
      setText(row, "ltp", rupees(ltp));
      setText(row, "unrealised", signed(unrealised), unrealised);
      setText(row, "pnl", signed(total), total);
    });
  }

  // ------------------------------------------------------------------------------ funds

  function updateFunds(funds) {
    if (!funds) return;
    var today = num(funds.today_realized_pnl) + num(funds.m2munrealized);
    document.querySelectorAll("[data-funds]").forEach(function (box) {
      setText(box, "available", "\u20b9" + rupees(funds.availablecash));
      setText(box, "utilised", "\u20b9" + rupees(funds.utiliseddebits));
      setText(box, "pnl", "\u20b9" + signed(today), today);
      box.querySelectorAll("[data-key]").forEach(function (cell) {
        var key = cell.getAttribute("data-key");
        if (!(key in funds)) return;
        var value = funds[key];
        cell.textContent = "\u20b9" + (cell.hasAttribute("data-signed") ? signed(value) : rupees(value));
      });
    });
    if (funds.reset_count !== undefined) {
      var last = funds.last_reset ? ", last " + funds.last_reset.slice(0, 16).replace("T", " ") + " IST" : "";
      setText(document, "reset-count", String(funds.reset_count) + last);
    }
  }

  // ------------------------------------------------------------------------------ actions

  function say(form, message, ok) {
    var dialog = form.closest("dialog");
    var alertBox = dialog ? dialog.querySelector('[data-role="dialog-alert"]') : null;
    var pageStatus = document.querySelector('[data-role="action-status"]');
    var pageAlert = document.querySelector('[data-role="action-alert"]');
    if (ok) {
      if (alertBox) alertBox.textContent = "";
      if (pageAlert) pageAlert.textContent = "";
      if (pageStatus) pageStatus.textContent = message;
    } else {
      if (pageStatus) pageStatus.textContent = "";
      var target = alertBox || pageAlert;
      if (target) target.textContent = message;
      else window.alert(message);
    }
  }
  function applyResult(data) {
    if (data.action_center) {
      document.dispatchEvent(new CustomEvent("dalal:action_center_update", { detail: data.action_center }));
    }
    if (data.order) updateOrder(data.order);
    (data.orders || []).forEach(updateOrder);
    (data.positions || []).forEach(updatePosition);
    updateFunds(data.funds);
    if (data.sandbox) {
      updateFunds(data.sandbox);
      document.querySelectorAll('table[data-book] tbody tr:not(.empty)').forEach(function (row) {
        var tbody = row.parentNode; row.remove(); syncEmpty(tbody);
      });
    }
  }
  function send(form) {
    var buttons = form.querySelectorAll("button[type=submit]");
    buttons.forEach(function (button) { button.disabled = true; button.setAttribute("aria-busy", "true"); });
    form.setAttribute("aria-busy", "true");
    var finish = function () {
      buttons.forEach(function (button) { button.disabled = false; button.removeAttribute("aria-busy"); });
      form.removeAttribute("aria-busy");
    };
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() },
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("application/json") < 0) {
        throw new Error("The desk answered HTTP " + response.status + ". Reload the page and try again.");
      }
      return response.json();
    }).then(function (data) {
      finish();
      if (data.status !== "success") {
        say(form, data.message || "The desk refused this.", false);
        return;
      }
      var dialog = form.closest("dialog");
      if (dialog && dialog.open) dialog.close();
      say(form, data.message, true);
      applyResult(data);
    }).catch(function (error) {
      finish();
      say(form, error && error.message ? error.message : "The desk could not be reached.", false);
    });
  }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-ajax")) return;
    if (!window.fetch || !window.FormData) return; // the form posts and the page reloads
    event.preventDefault();
    send(form);
  });

  // ------------------------------------------------------------------------------ dialogs

  var opener = null;
  function openDialog(dialog, from) {
    opener = from || document.activeElement;
    dialog.querySelectorAll('[data-role="dialog-alert"]').forEach(function (box) { box.textContent = ""; });
    if (typeof dialog.showModal === "function") dialog.showModal();
    else dialog.setAttribute("open", "");
  }
  document.addEventListener("close", function (event) {
    if (event.target instanceof HTMLDialogElement && opener && document.contains(opener)) {
      opener.focus();
    }
  }, true);
  function openModify(button) {
    var dialog = document.getElementById("modify-order");
    if (!dialog) return;
    var form = dialog.querySelector("form[data-modify-form]");
    var id = button.getAttribute("data-order-id");
    form.action = "/orders/" + encodeURIComponent(id) + "/modify";
    dialog.querySelector('[data-field="orderid"]').textContent = id;
    form.elements.quantity.value = button.getAttribute("data-quantity");
    form.elements.pricetype.value = button.getAttribute("data-pricetype");
    var price = num(button.getAttribute("data-price"));
    var trigger = num(button.getAttribute("data-trigger-price"));
    form.elements.price.value = price ? price.toFixed(2) : "";
    form.elements.trigger_price.value = trigger ? trigger.toFixed(2) : "";
    openDialog(dialog, button);
    form.elements.price.focus();
  }
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    var modify = target.closest('[data-action="modify"]');
    if (modify) { openModify(modify); return; }
    var open = target.closest("[data-open-dialog]");
    if (open) {
      var dialog = document.getElementById(open.getAttribute("data-open-dialog"));
      if (dialog) openDialog(dialog, open);
      return;
    }
    var closer = target.closest("[data-close-dialog]");
    if (closer) {
      var parent = closer.closest("dialog");
      if (parent) parent.close();
    }
  });

  // ------------------------------------------------------------------------------ pushes

  function on(name, handler) {
    document.addEventListener(name, function (event) { handler(event.detail); });
  }
  on("dalal:order_update", updateOrder);
  on("dalal:trade_update", updateTrade);
  on("dalal:position_update", updatePosition);
  on("dalal:funds_update", updateFunds);
  on("dalal:tick", applyTick);
  on("dalal:action_center_update", function (state) {
    if (state && typeof state.pending_count === "number") {
      setText(document, "pending", state.pending_count + " pending");
    }
  });
  followOpenPositions();

  window.dalalFormat = { rupees: rupees, signed: signed, whole: whole, trend: trend };
})();
