// The review app's script, second part: history, selection, moves, decisions, notes and live
// updates (concatenated after page-script.ts's part inside the same function).
export const PAGE_SCRIPT_ACTIONS = `
  async function loadHistory() {
    const it = current();
    const ticket = ++state.historyFor;
    if (!it) return;
    try {
      const response = await fetch("/api/items/" + encodeURIComponent(it.key) + "/history", { cache: "no-store" });
      if (!response.ok || ticket !== state.historyFor) return;
      const { history } = await response.json();
      if (ticket !== state.historyFor) return;
      const entries = history.slice().reverse().map((d) => {
        const li = el("li", d.current ? "" : "old");
        li.append(el("b", "", d.decision), document.createTextNode(" by " + d.reviewer + " · " + new Date(d.at).toLocaleString() + (d.current ? "" : " · an earlier image")));
        if (d.note) li.append(document.createTextNode(" — " + d.note));
        return li;
      });
      $("history").replaceChildren(...(entries.length ? entries : [el("li", "old", "none yet")]));
    } catch {
      /* the next change or selection asks again */
    }
  }

  function render() {
    if (!state.data) return;
    $("reviewer").textContent = state.data.reviewer;
    const visible = visibleItems();
    if (!visible.some((it) => it.key === state.selected)) state.selected = visible.length ? visible[0].key : null;
    renderCounts();
    renderStrip(visible);
    renderView();
    loadHistory();
  }

  function select(key) {
    state.selected = key;
    closeNote();
    for (const node of document.querySelectorAll(".card.sel")) {
      node.classList.remove("sel");
      node.removeAttribute("aria-current");
    }
    const node = Array.from(document.querySelectorAll(".card")).find((c) => c.dataset.key === key);
    if (node) {
      node.classList.add("sel");
      node.setAttribute("aria-current", "true");
      node.scrollIntoView({ block: "nearest" });
    }
    renderView();
    loadHistory();
  }

  function move(step) {
    const visible = visibleItems();
    if (!visible.length) return;
    const at = visible.findIndex((it) => it.key === state.selected);
    const next = at === -1 ? 0 : Math.min(visible.length - 1, Math.max(0, at + step));
    select(visible[next].key);
  }

  async function post(path, body) {
    try {
      const response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(body) });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        toast(answer.error || "HTTP " + response.status);
        if (response.status === 409) load();
        return null;
      }
      return answer;
    } catch (error) {
      toast("Not saved: " + error.message);
      return null;
    }
  }

  async function act(path, extra) {
    const it = current();
    if (!it || !it.hasImage) return toast("Nothing to decide here: this item has no image.");
    const answer = await post(path, Object.assign({ key: it.key, sha256: it.sha256 }, extra));
    if (!answer) return;
    // Shown at once; the event stream brings the store's own view right after.
    it.decision = answer.decision;
    const keep = state.selected;
    render();
    if (state.selected !== keep) toast(it.key + ": " + decisionOf(it) + " (hidden by the filter)");
  }

  function openNote() {
    const it = current();
    if (!it || !it.hasImage) return;
    const input = $("note");
    input.value = (it.decision && it.decision.note) || "";
    $("note-box").hidden = false;
    input.focus();
  }
  function closeNote() {
    $("note-box").hidden = true;
  }

  $("note").addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      const note = $("note").value;
      closeNote();
      act("/api/note", { note });
    } else if (event.key === "Escape") {
      event.preventDefault();
      closeNote();
    }
    event.stopPropagation();
  });
  $("q").addEventListener("input", () => {
    state.query = $("q").value;
    render();
  });
  $("q").addEventListener("keydown", (event) => {
    if (event.key === "Escape" || event.key === "Enter") $("q").blur();
    event.stopPropagation();
  });
  for (const button of document.querySelectorAll("[data-filter]")) {
    button.addEventListener("click", () => {
      state.filter = button.dataset.filter;
      render();
    });
  }
  $("approve").addEventListener("click", () => act("/api/decide", { decision: "approved" }));
  $("reject").addEventListener("click", () => act("/api/decide", { decision: "rejected" }));
  $("undo").addEventListener("click", () => act("/api/undo", {}));
  $("note-open").addEventListener("click", openNote);
  $("prev").addEventListener("click", () => move(-1));
  $("next").addEventListener("click", () => move(1));

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const keys = {
      ArrowRight: () => move(1), j: () => move(1), ArrowLeft: () => move(-1), k: () => move(-1),
      a: () => act("/api/decide", { decision: "approved" }), r: () => act("/api/decide", { decision: "rejected" }),
      u: () => act("/api/undo", {}), n: openNote, "/": () => $("q").focus(),
    };
    const action = keys[event.key.length === 1 ? event.key.toLowerCase() : event.key];
    if (!action) return;
    event.preventDefault();
    action();
  });

  // Live updates: the server says when the store's change mark moves (a run delivering, a
  // decision from another tab); EventSource reconnects by itself.
  const events = new EventSource("/api/events");
  events.onopen = () => {
    $("live").textContent = "live";
    $("live").classList.remove("off");
  };
  events.onerror = () => {
    $("live").textContent = "reconnecting…";
    $("live").classList.add("off");
  };
  events.onmessage = (event) => {
    if (!state.data || event.data !== state.data.mark) load();
  };
  load();
})();
`;
