"""A small accessibility checker that runs inside the page (no external library).

`audit(page)` runs one script in the page and returns its findings as readable strings:

- form controls (input, select, textarea, button, role=button/combobox/radio/checkbox) that are
  visible and have no accessible name (aria-labelledby, aria-label, a <label>, a wrapping
  <label>, title; for buttons also their text or an image's alt; a placeholder is not a label);
- images (<img>, role=img, <svg role=img>) without alt text or a name;
- text whose contrast with its effective background is below 4.5:1 (3:1 for large text,
  24px or 18.66px bold, as WCAG 2.x AA). Colours come from computed styles, resolved to sRGB
  through a 1x1 canvas so any CSS colour syntax (oklch, color-mix, ...) works; backgrounds are
  composed up the ancestor chain until an opaque one. Text over a background image or gradient
  cannot be measured this way and is skipped; disabled controls are exempt, as in WCAG.

Elements that are not rendered (display:none, visibility:hidden, inside a closed <dialog>,
aria-hidden, zero size) are not checked: what a trader cannot see or reach is not a finding.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

_SCRIPT = r"""
(scope) => {
  const root = scope ? document.querySelector(scope) : document.body;
  if (!root) return ["scope " + scope + " not found"];
  const findings = [];

  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 1;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const rgba = (css) => {
    ctx.clearRect(0, 0, 1, 1);
    ctx.fillStyle = "rgba(0,0,0,0)";
    ctx.fillStyle = css;
    ctx.fillRect(0, 0, 1, 1);
    const d = ctx.getImageData(0, 0, 1, 1).data;
    return [d[0], d[1], d[2], d[3] / 255];
  };
  const over = (top, bottom) => {  // top composed over an opaque bottom
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  };
  const luminance = (c) => {
    const ch = c.slice(0, 3).map((v) => {
      v = v / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2];
  };
  const ratio = (a, b) => {
    const [l1, l2] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (l1 + 0.05) / (l2 + 0.05);
  };

  const rendered = (el) => {
    if (el.closest("[aria-hidden='true'], [hidden], template")) return false;
    const dialog = el.closest("dialog");
    if (dialog && !dialog.open) return false;
    const style = getComputedStyle(el);
    if (style.display === "none" || style.visibility === "hidden") return false;
    if (el.getClientRects().length === 0) return false;
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0;
  };

  const describe = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += "#" + el.id;
    const name = el.getAttribute("name");
    if (name) s += "[name=" + name + "]";
    const type = el.getAttribute("type");
    if (type) s += "[type=" + type + "]";
    const cls = (el.getAttribute("class") || "").trim();
    if (cls) s += "." + cls.split(/\s+/).join(".");
    const text = (el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 40);
    if (text) s += ' "' + text + '"';
    return s;
  };

  const textOf = (el) => {
    // Text content plus img alt, as the accessible-name computation does for buttons.
    let out = "";
    for (const node of el.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) out += node.textContent;
      else if (node.nodeType === Node.ELEMENT_NODE) {
        if (node.getAttribute("aria-hidden") === "true") continue;
        if (node.tagName === "IMG") out += node.getAttribute("alt") || "";
        else if (node.getAttribute("aria-label")) out += node.getAttribute("aria-label");
        else out += textOf(node);
      }
    }
    return out;
  };

  const accessibleName = (el) => {
    const by = el.getAttribute("aria-labelledby");
    if (by) {
      const t = by.split(/\s+/).map((id) => document.getElementById(id))
        .filter(Boolean).map((n) => textOf(n)).join(" ").trim();
      if (t) return t;
    }
    const label = (el.getAttribute("aria-label") || "").trim();
    if (label) return label;
    if (el.labels && el.labels.length) {
      const t = Array.from(el.labels).map((l) => textOf(l)).join(" ").trim();
      if (t) return t;
    }
    const tag = el.tagName;
    const type = (el.getAttribute("type") || "").toLowerCase();
    if (tag === "INPUT" && ["submit", "button", "reset"].includes(type)) {
      const fallback = { submit: "Submit", reset: "Reset" }[type] || "";
      const v = (el.value || fallback).trim();
      if (v) return v;
    }
    if (tag === "INPUT" && type === "image") {
      const alt = (el.getAttribute("alt") || "").trim();
      if (alt) return alt;
    }
    const role = el.getAttribute("role");
    if (tag === "BUTTON" || role === "button" || role === "radio" || role === "checkbox" ||
        role === "tab" || role === "option" || role === "switch" || role === "menuitem") {
      const t = textOf(el).trim();
      if (t) return t;
    }
    return (el.getAttribute("title") || "").trim();
  };

  // 1. Controls without a name.
  const controls = root.querySelectorAll(
    "input:not([type=hidden]), select, textarea, button, [role=button], [role=combobox], " +
    "[role=radio], [role=checkbox], [role=switch], [role=textbox], [role=slider], [role=tab]"
  );
  for (const el of controls) {
    if (!rendered(el)) continue;
    if (!accessibleName(el)) {
      const hint = el.getAttribute("placeholder") ? " (a placeholder is not a label)" : "";
      findings.push("no accessible name: " + describe(el) + hint);
    }
  }

  // 2. Images without alternative text.
  for (const el of root.querySelectorAll("img, [role=img]")) {
    if (!rendered(el)) continue;
    if (el.tagName === "IMG") {
      if (!el.hasAttribute("alt") && !el.getAttribute("aria-label") &&
          !el.getAttribute("aria-labelledby")) {
        findings.push("image without alt: " + describe(el) + " src=" + el.getAttribute("src"));
      }
    } else if (!accessibleName(el)) {
      findings.push("role=img without a name: " + describe(el));
    }
  }

  // 3. Text contrast.
  const canvasColour = () => {
    // What shows through when nothing paints: the root's background, else the UA canvas.
    const html = rgba(getComputedStyle(document.documentElement).backgroundColor);
    if (html[3] > 0) return over(html, [255, 255, 255, 1]);
    const body = rgba(getComputedStyle(document.body).backgroundColor);
    return body[3] > 0 ? over(body, [255, 255, 255, 1]) : [255, 255, 255, 1];
  };
  const backgroundOf = (el) => {
    const layers = [];
    for (let n = el; n && n.nodeType === Node.ELEMENT_NODE; n = n.parentElement) {
      const style = getComputedStyle(n);
      if (style.backgroundImage && style.backgroundImage !== "none") return null;
      const c = rgba(style.backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let bg = layers.length && layers[layers.length - 1][3] >= 1 ? layers.pop() : canvasColour();
    while (layers.length) bg = over(layers.pop(), bg);
    return bg;
  };
  const seen = new Set();
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim()) continue;
    const el = node.parentElement;
    if (!el || seen.has(el)) continue;
    seen.add(el);
    if (["SCRIPT", "STYLE", "NOSCRIPT", "OPTION"].includes(el.tagName)) continue;
    if (!rendered(el)) continue;
    if (el.closest(":disabled, [aria-disabled='true']")) continue;
    const style = getComputedStyle(el);
    if (parseFloat(style.opacity) === 0) continue;
    const bg = backgroundOf(el);
    if (!bg) continue;
    const fg = over(rgba(style.color), bg);
    const size = parseFloat(style.fontSize);
    const bold = parseInt(style.fontWeight, 10) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    const need = large ? 3 : 4.5;
    const r = ratio(fg, bg);
    if (r < need) {
      findings.push(
        "contrast " + r.toFixed(2) + ":1 < " + need + ":1: " + describe(el) +
        " color=" + style.color + " on rgb(" + bg.slice(0, 3).map(Math.round).join(",") + ")"
      );
    }
  }
  return findings;
}
"""


def audit(page: Page, scope: str | None = None) -> list[str]:
    """Findings for the page (or the element matching the CSS selector `scope`)."""
    result: Any = page.evaluate(_SCRIPT, scope)
    return [str(item) for item in result]


def chromium_name(page: Page, selector: str) -> str:
    """The accessible name Chromium itself computes for the first element matching the CSS
    `selector` (Playwright's own computation leaves out some roles, e.g. <dd>'s definition)."""
    session = page.context.new_cdp_session(page)
    try:
        root = session.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = session.send("DOM.querySelector", {"nodeId": root, "selector": selector})
        assert node["nodeId"], f"nothing matches {selector}"
        tree = session.send(
            "Accessibility.getPartialAXTree", {"nodeId": node["nodeId"], "fetchRelatives": False}
        )
        name: Any = tree["nodes"][0].get("name", {}).get("value", "")
        return str(name)
    finally:
        session.detach()
