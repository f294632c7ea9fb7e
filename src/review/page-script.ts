// The review app's script, served as /app.js: keyboard and mouse review, filters, search, live
// updates from /api/events. Every text from the data is written with textContent.
import { PAGE_SCRIPT_ACTIONS } from "./page-actions.js";

/** The state, the data and the views; page-actions.ts holds the moves, decisions and live updates. */
export const PAGE_SCRIPT = `
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  const state = { data: null, filter: "all", query: "", selected: null, loading: false, again: false, historyFor: 0 };
  const FILTERS = {
    all: () => true,
    undecided: (it) => it.hasImage && decisionOf(it) === "undecided",
    approved: (it) => it.hasImage && decisionOf(it) === "approved",
    rejected: (it) => it.hasImage && decisionOf(it) === "rejected",
    failed: (it) => it.state === "failed" || it.state === "missing",
    flagged: (it) => it.qcFlags.length > 0,
  };

  function decisionOf(it) {
    return it.decision ? it.decision.decision : "undecided";
  }
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function imageUrl(kind, it) {
    return "/" + kind + "/" + encodeURIComponent(it.key) + "?v=" + encodeURIComponent(it.sha256 || "");
  }
  function allItems() {
    return state.data ? state.data.rows.flatMap((row) => row.items) : [];
  }
  function matches(it) {
    const q = state.query.trim().toLowerCase();
    return FILTERS[state.filter](it) && (!q || it.key.toLowerCase().includes(q) || it.prompt.toLowerCase().includes(q));
  }
  function visibleItems() {
    return allItems().filter(matches);
  }
  function current() {
    return allItems().find((it) => it.key === state.selected) || null;
  }

  let toastTimer = 0;
  function toast(message) {
    const box = $("toast");
    box.textContent = message;
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (box.hidden = true), 4000);
  }

  async function load() {
    if (state.loading) {
      state.again = true;
      return;
    }
    state.loading = true;
    try {
      const response = await fetch("/api/items", { cache: "no-store" });
      if (!response.ok) throw new Error(response.status === 401 ? "the session ended: open the URL imgbatch review printed" : "HTTP " + response.status);
      state.data = await response.json();
      render();
    } catch (error) {
      toast("Could not load the items: " + error.message);
    } finally {
      state.loading = false;
      if (state.again) {
        state.again = false;
        load();
      }
    }
  }

  function renderCounts() {
    const items = allItems();
    const counts = { approved: 0, rejected: 0, undecided: 0, failed: 0, flagged: 0, pending: 0 };
    for (const it of items) {
      if (it.hasImage) counts[decisionOf(it)]++;
      if (FILTERS.failed(it)) counts.failed++;
      else if (it.state !== "done") counts.pending++;
      if (it.qcFlags.length) counts.flagged++;
    }
    for (const name of Object.keys(counts)) $("n-" + name).textContent = String(counts[name]);
    for (const button of document.querySelectorAll("[data-filter]")) {
      const name = button.dataset.filter;
      button.querySelector(".n").textContent = String(name === "all" ? items.length : counts[name]);
      button.setAttribute("aria-pressed", String(name === state.filter));
    }
  }

  // Cards are kept while their item looks the same: a live update every second during a run
  // then moves a few nodes instead of rebuilding every thumbnail.
  const cards = new Map();
  function cardFor(it) {
    const look = JSON.stringify([it.sha256, it.state, it.hasThumb, it.decision && it.decision.decision, it.qcFlags.length, it.error && it.error.code]);
    let kept = cards.get(it.key);
    if (!kept || kept.look !== look) {
      kept = { look, node: card(it) };
      cards.set(it.key, kept);
    }
    const selected = it.key === state.selected;
    kept.node.classList.toggle("sel", selected);
    if (selected) kept.node.setAttribute("aria-current", "true");
    else kept.node.removeAttribute("aria-current");
    return kept.node;
  }

  function card(it) {
    const button = el("button", "card");
    button.type = "button";
    button.dataset.key = it.key;
    button.title = it.key;
    const decision = decisionOf(it);
    if (it.hasImage && decision !== "undecided") button.classList.add(decision);
    const th = el("span", "th");
    if (it.hasThumb && it.sha256) {
      const img = el("img");
      img.src = imageUrl("thumb", it);
      img.alt = it.key;
      img.loading = "lazy";
      th.append(img);
    } else if (FILTERS.failed(it)) {
      th.classList.add("fail");
      th.textContent = it.error ? it.error.code : it.state;
    } else {
      th.classList.add("wait");
      th.textContent = it.state;
    }
    // The row's name heads the group: a card names what sets it apart (its matrix values, its variant).
    const own = it.key.startsWith(it.rowId + "--") ? it.key.slice(it.rowId.length + 2) : it.key;
    button.append(th, el("span", "k", own));
    if (it.hasImage && decision === "approved") button.append(el("span", "mark approved", "✓"));
    if (it.hasImage && decision === "rejected") button.append(el("span", "mark rejected", "✗"));
    if (it.qcFlags.length) button.append(el("span", "mark flag", "⚑"));
    button.addEventListener("click", () => select(it.key));
    return button;
  }

  function renderStrip(visible) {
    const strip = $("strip");
    const shown = new Set(visible.map((it) => it.key));
    const nodes = [];
    for (const row of state.data.rows) {
      const items = row.items.filter((it) => shown.has(it.key));
      if (!items.length) continue;
      const section = el("section", "row");
      const h2 = el("h2");
      h2.append(el("span", "", row.rowId), el("small", "", row.items.length === 1 ? "1 image" : row.items.length + " images" + (row.inManifest ? "" : " · no longer in the manifest")));
      const list = el("div", "cards");
      list.append(...items.map(cardFor));
      section.append(h2, list);
      nodes.push(section);
    }
    if (!nodes.length) nodes.push(el("p", "empty", state.data.rows.length ? "Nothing matches this filter." : "No items yet."));
    strip.replaceChildren(...nodes);
    $("shown").textContent = "showing " + visible.length + " of " + allItems().length;
  }

  function renderView() {
    const it = current();
    const big = $("big");
    const none = $("nobig");
    for (const id of ["approve", "reject", "undo", "note-open"]) $(id).disabled = !(it && it.hasImage);
    if (!it) {
      big.hidden = true;
      none.hidden = false;
      none.textContent = "No image selected.";
      for (const id of ["key", "badge", "prompt"]) $(id).textContent = "";
      $("settings").replaceChildren();
      $("flags").replaceChildren();
      $("history").replaceChildren();
      $("note-view").hidden = true;
      $("error").hidden = true;
      return;
    }
    if (it.hasImage) {
      const src = imageUrl("image", it);
      if (big.getAttribute("src") !== src) big.src = src;
      big.alt = it.key;
      big.hidden = false;
      none.hidden = true;
    } else {
      big.hidden = true;
      none.hidden = false;
      none.textContent = FILTERS.failed(it) ? "No image: the item " + it.state + "." : "No image yet: the item is " + it.state + ".";
    }
    $("key").textContent = it.key;
    const decision = decisionOf(it);
    const badge = $("badge");
    badge.className = "badge " + decision;
    badge.textContent = it.hasImage ? decision + (it.decision && decision !== "undecided" ? " by " + it.decision.reviewer : "") : it.state;
    const note = it.decision && it.decision.note;
    $("note-view").hidden = !note;
    $("note-view").textContent = note || "";
    $("prompt").textContent = it.prompt;
    const settings = [["model", it.model], ["ratio", it.aspectRatio], ["style", it.style || "—"], ["provider", it.provider], ["size", it.width && it.height ? it.width + " × " + it.height : "—"], ["state", it.state]];
    $("settings").replaceChildren(...settings.flatMap(([name, value]) => [el("dt", "", name), el("dd", "", value)]));
    // The row's local reference image beside the result (served by key, like the images).
    $("reference").hidden = !it.hasReference;
    if (it.hasReference) $("reference-img").src = "/reference/" + encodeURIComponent(it.key);
    $("flags").replaceChildren(...it.qcFlags.map((f) => el("li", "", "⚑ " + f.gate + " (" + f.mode + "): " + f.message)));
    $("error").hidden = !it.error;
    $("error").textContent = it.error ? it.error.code + (it.error.message ? ": " + it.error.message : "") : "";
  }
` + PAGE_SCRIPT_ACTIONS;
