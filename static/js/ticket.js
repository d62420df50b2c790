// The order ticket: instrument autocomplete, a live margin/charges preview and placing an order,
// all through the desk's /ticket/ JSON endpoints (session cookie + X-CSRFToken header).
// Other pages open it prefilled with window.dalalTicket.open({symbol, exchange, side, ...}) or
// with a button carrying data-ticket-symbol / data-ticket-exchange / data-ticket-side.
(function () {
  "use strict";

  var dialog, form, instrument, suggestions, exchange, quantity, lots, lotsField, priceType,
      product, price, trigger, priceField, triggerField, quantityHint, note, alertBox, statusBox,
      placeButton, marginOut, chargesOut;
  var chosen = null;        // the instrument picked or previewed: {symbol, exchange, lotsize, ...}
  var options = [];         // current suggestions
  var active = -1;          // index of the highlighted suggestion
  var searchTimer = null, previewTimer = null, searchSeq = 0, previewSeq = 0;
  var opener = null;

  var rupees = new Intl.NumberFormat("en-IN", { style: "currency", currency: "INR" });

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function request(method, url, body) {
    var init = {
      method: method,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() }
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (response) {
      return response.json().catch(function () {
        return { status: "error", message: "The desk answered " + response.status + " " + response.statusText + "." };
      }).then(function (payload) {
        payload.httpStatus = response.status;
        return payload;
      });
    }, function () {
      return { status: "error", message: "Could not reach the desk. Check the connection and try again." };
    });
  }

  // ------------------------------------------------------------------ fields

  function side() {
    var checked = form.querySelector('input[name="action"]:checked');
    return checked ? checked.value : "BUY";
  }

  function order() {
    return {
      symbol: instrument.value.trim().toUpperCase(),
      exchange: exchange.value,
      action: side(),
      quantity: quantity.value.trim(),
      pricetype: priceType.value,
      product: product.value,
      price: priceField.hidden ? "0" : price.value.trim(),
      trigger_price: triggerField.hidden ? "0" : trigger.value.trim()
    };
  }

  function showPriceFields() {
    var kind = priceType.value;
    priceField.hidden = !(kind === "LIMIT" || kind === "SL");
    triggerField.hidden = !(kind === "SL" || kind === "SL-M");
  }

  function lotSize() {
    return chosen && chosen.lotsize ? chosen.lotsize : 1;
  }

  function showLots() {
    var derivative = !!(chosen && chosen.derivative);
    var size = lotSize();
    lotsField.hidden = !derivative;
    quantity.step = derivative ? String(size) : "1";
    quantity.min = derivative ? String(size) : "1";
    if (derivative) {
      var units = parseInt(quantity.value, 10) || 0;
      var count = units / size;
      if (Number.isInteger(count) && count > 0) lots.value = String(count);
      quantityHint.textContent = "Units: " + (Number.isInteger(count) ? count : "?") +
        (count === 1 ? " lot" : " lots") + " × lot size " + size + " = " + units;
    } else {
      quantityHint.textContent = "Units";
    }
  }

  function choose(item) {
    var wasDerivative = !!(chosen && chosen.derivative);
    chosen = item;
    instrument.value = item.symbol;
    exchange.value = item.exchange;
    if (item.derivative && (!wasDerivative || (parseInt(quantity.value, 10) || 0) % item.lotsize !== 0)) {
      quantity.value = String(item.lotsize);
    }
    if (item.derivative && product.value === "CNC") product.value = "NRML";
    if (!item.derivative && product.value === "NRML") product.value = "MIS";
    closeSuggestions();
    showLots();
    schedulePreview(0);
  }

  // ------------------------------------------------------------------ autocomplete

  function closeSuggestions() {
    suggestions.hidden = true;
    suggestions.textContent = "";
    instrument.setAttribute("aria-expanded", "false");
    instrument.removeAttribute("aria-activedescendant");
    options = [];
    active = -1;
  }

  function renderSuggestions(items) {
    suggestions.textContent = "";
    options = items;
    active = -1;
    instrument.removeAttribute("aria-activedescendant");
    if (!items.length) {
      closeSuggestions();
      return;
    }
    items.forEach(function (item, index) {
      var option = document.createElement("li");
      option.id = "ticket-option-" + index;
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", "false");
      var label = document.createElement("strong");
      label.textContent = item.symbol + " " + item.exchange;
      var detail = document.createElement("span");
      detail.className = "muted";
      detail.textContent = " " + (item.name || "") + (item.derivative ? " · lot " + item.lotsize : "");
      option.appendChild(label);
      option.appendChild(detail);
      option.addEventListener("mousedown", function (event) { event.preventDefault(); });
      option.addEventListener("click", function () { choose(item); instrument.focus(); });
      suggestions.appendChild(option);
    });
    suggestions.hidden = false;
    instrument.setAttribute("aria-expanded", "true");
  }

  function highlight(index) {
    var items = suggestions.querySelectorAll('[role="option"]');
    if (!items.length) return;
    active = (index + items.length) % items.length;
    items.forEach(function (item, position) {
      item.setAttribute("aria-selected", position === active ? "true" : "false");
    });
    instrument.setAttribute("aria-activedescendant", items[active].id);
    items[active].scrollIntoView({ block: "nearest" });
  }

  function search() {
    var text = instrument.value.trim();
    var seq = ++searchSeq;
    if (!text) {
      closeSuggestions();
      return;
    }
    request("GET", "/ticket/search?q=" + encodeURIComponent(text)).then(function (payload) {
      if (seq !== searchSeq || document.activeElement !== instrument) return;
      renderSuggestions(payload.status === "success" ? payload.data : []);
    });
  }

  function onInstrumentKey(event) {
    var open = !suggestions.hidden && options.length > 0;
    if (event.key === "ArrowDown") {
      event.preventDefault();
      if (open) highlight(active + 1); else search();
    } else if (event.key === "ArrowUp" && open) {
      event.preventDefault();
      highlight(active - 1);
    } else if (event.key === "Enter" && open) {
      event.preventDefault();
      choose(options[active >= 0 ? active : 0]);
    } else if (event.key === "Escape" && open) {
      event.preventDefault(); // close the list, not the dialog
      event.stopPropagation();
      closeSuggestions();
    }
  }

  // ------------------------------------------------------------------ preview

  function schedulePreview(delay) {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(preview, delay === undefined ? 250 : delay);
  }

  function setPreview(margin, charges, message) {
    marginOut.textContent = margin;
    chargesOut.textContent = charges;
    note.textContent = message;
  }

  function preview() {
    var body = order();
    var seq = ++previewSeq;
    if (!body.symbol) {
      setPreview("—", "—", "Choose an instrument to see the margin and charges.");
      return;
    }
    note.textContent = "Updating…";
    request("POST", "/ticket/preview", body).then(function (payload) {
      if (seq !== previewSeq) return;
      if (payload.status !== "success") {
        setPreview("—", "—", payload.message || "No preview.");
        return;
      }
      var data = payload.data;
      if (!chosen || chosen.symbol !== data.symbol || chosen.exchange !== data.exchange) {
        chosen = data;
        showLots();
      }
      setPreview(rupees.format(data.margin.total), rupees.format(data.charges.total),
        "At " + rupees.format(data.price) + " for " + data.quantity + " units (value " +
        rupees.format(data.value) + "); brokerage " + rupees.format(data.charges.brokerage) +
        ", STT " + rupees.format(data.charges.stt) + ", GST " + rupees.format(data.charges.gst) + ".");
    });
  }

  // ------------------------------------------------------------------ placing

  function clearErrors() {
    alertBox.hidden = true;
    alertBox.textContent = "";
    form.querySelectorAll("[data-error-for]").forEach(function (element) { element.textContent = ""; });
    form.querySelectorAll('[aria-invalid="true"]').forEach(function (element) {
      element.removeAttribute("aria-invalid");
    });
  }

  function showError(payload) {
    alertBox.textContent = payload.message || "The order was not placed.";
    alertBox.hidden = false;
    var errors = payload.errors || {};
    Object.keys(errors).forEach(function (field) {
      var slot = form.querySelector('[data-error-for="' + field + '"]');
      var input = form.querySelector('[name="' + field + '"]');
      if (slot) slot.textContent = errors[field].join("; ");
      if (input) input.setAttribute("aria-invalid", "true");
    });
  }

  function place(event) {
    event.preventDefault();
    if (!suggestions.hidden) closeSuggestions();
    clearErrors();
    statusBox.textContent = "Placing order…";
    placeButton.disabled = true;
    request("POST", "/ticket/place", order()).then(function (payload) {
      placeButton.disabled = false;
      if (payload.status !== "success") {
        statusBox.textContent = "";
        showError(payload);
        return;
      }
      statusBox.textContent = "Order " + payload.orderid + " placed";
      document.dispatchEvent(new CustomEvent("dalal:order-placed", { detail: payload }));
      schedulePreview(0);
    });
  }

  // ------------------------------------------------------------------ opening

  function open(prefill) {
    prefill = prefill || {};
    opener = document.activeElement;
    clearErrors();
    statusBox.textContent = "";
    if (prefill.symbol) {
      instrument.value = String(prefill.symbol).toUpperCase();
      chosen = null;
    }
    if (prefill.exchange) exchange.value = String(prefill.exchange).toUpperCase();
    if (prefill.side) {
      var radio = form.querySelector('input[name="action"][value="' + String(prefill.side).toUpperCase() + '"]');
      if (radio) radio.checked = true;
    }
    if (prefill.pricetype) priceType.value = prefill.pricetype;
    if (prefill.product) product.value = prefill.product;
    if (prefill.price !== undefined) price.value = prefill.price;
    if (prefill.trigger_price !== undefined) trigger.value = prefill.trigger_price;
    if (prefill.quantity !== undefined) quantity.value = prefill.quantity;
    showPriceFields();
    if (!dialog.open) dialog.showModal();
    if (prefill.symbol) {
      var url = "/ticket/instrument?symbol=" + encodeURIComponent(instrument.value) +
        "&exchange=" + encodeURIComponent(exchange.value);
      request("GET", url).then(function (payload) {
        if (payload.status !== "success") {
          setPreview("—", "—", payload.message || "Unknown instrument.");
          return;
        }
        var item = payload.data;
        if (prefill.quantity === undefined) {
          chosen = null;
          choose(item);
        } else {
          chosen = item;
          showLots();
          schedulePreview(0);
        }
        quantity.focus();
      });
    } else {
      instrument.focus();
      schedulePreview(0);
    }
  }

  function close() {
    if (dialog.open) dialog.close();
  }

  function init() {
    dialog = document.getElementById("order-ticket");
    if (!dialog) return;
    form = document.getElementById("ticket-form");
    instrument = document.getElementById("ticket-instrument");
    suggestions = document.getElementById("ticket-suggestions");
    exchange = document.getElementById("ticket-exchange");
    quantity = document.getElementById("ticket-quantity");
    lots = document.getElementById("ticket-lots");
    lotsField = document.getElementById("ticket-lots-field");
    priceType = document.getElementById("ticket-pricetype");
    product = document.getElementById("ticket-product");
    price = document.getElementById("ticket-price");
    trigger = document.getElementById("ticket-trigger");
    priceField = document.getElementById("ticket-price-field");
    triggerField = document.getElementById("ticket-trigger-field");
    quantityHint = document.getElementById("ticket-quantity-hint");
    note = document.getElementById("ticket-preview-note");
    alertBox = document.getElementById("ticket-alert");
    statusBox = document.getElementById("ticket-status");
    placeButton = document.getElementById("ticket-place");
    marginOut = dialog.querySelector('[data-field="margin"]');
    chargesOut = dialog.querySelector('[data-field="charges"]');

    instrument.addEventListener("input", function () {
      chosen = null;
      clearTimeout(searchTimer);
      searchTimer = setTimeout(search, 120);
      schedulePreview(400);
    });
    instrument.addEventListener("keydown", onInstrumentKey);
    instrument.addEventListener("blur", function () { setTimeout(closeSuggestions, 150); });
    exchange.addEventListener("change", function () { chosen = null; schedulePreview(0); });
    priceType.addEventListener("change", function () { showPriceFields(); schedulePreview(0); });
    [product, price, trigger].forEach(function (element) {
      element.addEventListener("input", function () { schedulePreview(); });
      element.addEventListener("change", function () { schedulePreview(); });
    });
    form.querySelectorAll('input[name="action"]').forEach(function (radio) {
      radio.addEventListener("change", function () { schedulePreview(0); });
    });
    quantity.addEventListener("input", function () { showLots(); schedulePreview(); });
    lots.addEventListener("input", function () {
      var count = parseInt(lots.value, 10);
      if (count > 0) {
        quantity.value = String(count * lotSize());
        showLots();
        schedulePreview();
      }
    });
    form.addEventListener("submit", place);
    dialog.querySelector("[data-ticket-dismiss]").addEventListener("click", close);
    dialog.addEventListener("close", function () {
      closeSuggestions();
      if (opener && typeof opener.focus === "function" && document.contains(opener)) opener.focus();
    });

    var button = document.getElementById("new-order");
    if (button) button.addEventListener("click", function () { open(); });
    // Buttons anywhere (option chain, instrument page) open the ticket prefilled.
    document.addEventListener("click", function (event) {
      var target = event.target.closest ? event.target.closest("[data-ticket-symbol]") : null;
      if (!target) return;
      event.preventDefault();
      open({
        symbol: target.getAttribute("data-ticket-symbol"),
        exchange: target.getAttribute("data-ticket-exchange"),
        side: target.getAttribute("data-ticket-side") || undefined
      });
    });
    showPriceFields();
  }

  window.dalalTicket = { open: open, close: close };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
