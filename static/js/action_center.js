// The Action Center in place: the pending table follows the server's pushes
// (dalal:action_center_update, from live.js or from an action's answer via books.js), a
// decision appears in the Decisions table at once, and Reject asks for a reason in a dialog.
// Approve/Reject forms are data-ajax forms, sent by books.js.
(function () {
  "use strict";
  var pendingBody = document.querySelector('table[data-book="pending"] tbody');
  var decisionsBody = document.querySelector('table[data-book="decisions"] tbody');
  var dialog = document.getElementById("reject-order");
  var ist = new Intl.DateTimeFormat("en-IN", {
    timeZone: "Asia/Kolkata", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  var grouped = new Intl.NumberFormat("en-IN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

  var books = window.dalalBooks; // loaded first: its row and form helpers
  var el = books.el;
  function when(iso) {
    return iso ? ist.format(new Date(iso)).replace(",", "") + " IST" : "\u2014";
  }
  function age(seconds) {
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min";
    return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  }
  function hidden(name, value) {
    return el("input", { type: "hidden", name: name, value: value });
  }
  function pendingRow(item) {
    var approve = el("form", {
      method: "post", className: "inline", "data-ajax": "",
      action: "/action-center/" + item.id + "/approve",
    }, [
      hidden("csrf_token", books.csrfToken()), hidden("next", "action_center.index"),
      el("button", { type: "submit", className: "small primary", "aria-label": "Approve order " + item.id, text: "Approve" }),
    ]);
    var reject = el("button", {
      type: "button", className: "small danger", "data-action": "reject",
      "data-pending-id": String(item.id), "aria-label": "Reject order " + item.id, text: "Reject",
    });
    var price = Number(item.price);
    var symbol = el("td", {}, [item.symbol + " ", el("span", { className: "muted", text: item.exchange })]);
    if (item.legs > 1) symbol.appendChild(el("span", { className: "muted", text: " +" + (item.legs - 1) + " more" }));
    return el("tr", { "data-pending-id": String(item.id), "data-created": item.created_at }, [
      el("td", { text: String(item.id) }),
      el("td", { text: when(item.created_at) }),
      el("td", { "data-field": "age", text: age(item.age_seconds) }),
      el("td", { text: item.source }),
      el("td", {}, [item.strategy || "\u2014", el("span", { className: "muted reason", text: item.algo_id })]),
      symbol,
      el("td", { className: "side-" + item.action.toLowerCase(), text: item.action }),
      el("td", { className: "num", text: String(item.quantity) }),
      el("td", { className: "num", text: price ? grouped.format(price) : item.pricetype }),
      el("td", { text: item.description }),
      el("td", { text: when(item.expires_at) }),
      el("td", { className: "row-actions" }, [approve, reject]),
    ]);
  }
  function decisionRow(item) {
    var outcome = el("td");
    (item.results || []).forEach(function (result, index) {
      if (index) outcome.appendChild(document.createTextNode(", "));
      if (result.orderid) outcome.appendChild(el("code", { text: result.orderid }));
      else outcome.appendChild(document.createTextNode(result.symbol + ": " + result.error));
    });
    if (item.reason) outcome.appendChild(el("span", { className: "muted", text: " " + item.reason }));
    return el("tr", { "data-pending-id": String(item.id) }, [
      el("td", { text: when(item.decided_at) }),
      el("td", { text: String(item.id) }),
      el("td", { text: item.source }),
      el("td", { text: item.strategy || "\u2014" }),
      el("td", { text: item.description }),
      el("td", {}, [el("span", { className: "status status-" + item.status, text: item.status })]),
      el("td", { text: item.decided_by }),
      outcome,
    ]);
  }
  var syncEmpty = books.syncEmpty;
  function redraw(state) {
    if (pendingBody) {
      // Rows are kept, added and removed by id, never rebuilt: a keyboard user's place in
      // the table survives every push. When the focused row goes, focus moves to the next
      // row's Approve button (or the table), never to the page's body.
      var wanted = {};
      (state.pending || []).forEach(function (item) { wanted[String(item.id)] = item; });
      var focused = document.activeElement;
      var lostFocus = false;
      var next = null;
      pendingBody.querySelectorAll("tr[data-pending-id]").forEach(function (row) {
        var id = row.getAttribute("data-pending-id");
        if (wanted[id]) { delete wanted[id]; if (lostFocus && !next) next = row; return; }
        // The focus may already have fallen to <body>: books.js disables a form's button
        // while its request runs, and a disabled button drops the focus.
        var dropped = !focused || focused === document.body;
        if ((focused && row.contains(focused)) || (dropped && id === lastRowId)) lostFocus = true;
        row.remove();
      });
      var empty = pendingBody.querySelector("tr.empty");
      (state.pending || []).forEach(function (item) {
        if (wanted[String(item.id)]) pendingBody.insertBefore(pendingRow(item), empty);
      });
      syncEmpty(pendingBody);
      if (lostFocus) {
        var target = next ? next.querySelector("button") : null;
        if (!target) target = pendingBody.closest(".table-wrap");
        if (target) target.focus();
      }
    }
    (state.decided || []).forEach(function (item) {
      if (!decisionsBody || decisionsBody.querySelector('tr[data-pending-id="' + item.id + '"]')) return;
      decisionsBody.insertBefore(decisionRow(item), decisionsBody.firstChild);
      syncEmpty(decisionsBody);
    });
  }
  document.addEventListener("dalal:action_center_update", function (event) { redraw(event.detail || {}); });
  var lastRowId = null; // the pending row the keyboard was last in
  if (pendingBody) {
    pendingBody.addEventListener("focusin", function (event) {
      var row = event.target instanceof Element ? event.target.closest("tr[data-pending-id]") : null;
      lastRowId = row ? row.getAttribute("data-pending-id") : null;
    });
  }

  function openReject(action, title) {
    if (!dialog) return;
    var form = dialog.querySelector("form[data-reject-form]");
    form.action = action;
    form.elements.reason.value = "";
    document.getElementById("reject-order-title").textContent = title;
    dialog.querySelectorAll('[data-role="dialog-alert"]').forEach(function (box) { box.textContent = ""; });
    if (typeof dialog.showModal === "function") dialog.showModal(); else dialog.setAttribute("open", "");
    form.elements.reason.focus();
  }
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    var one = target.closest('[data-action="reject"]');
    if (one) {
      var id = one.getAttribute("data-pending-id");
      openReject("/action-center/" + encodeURIComponent(id) + "/reject", "Reject order " + id);
      return;
    }
    if (target.closest('[data-action="reject-all"]')) {
      openReject("/action-center/reject-all", "Reject all pending orders");
    }
  });

  // Ages move on without a round trip.
  window.setInterval(function () {
    if (!pendingBody) return;
    pendingBody.querySelectorAll("tr[data-created]").forEach(function (row) {
      var seconds = Math.max(0, Math.floor((Date.now() - Date.parse(row.getAttribute("data-created"))) / 1000));
      var cell = row.querySelector('[data-field="age"]');
      if (cell) cell.textContent = age(seconds);
    });
  }, 10000);
})();
