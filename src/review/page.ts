// The review app's single page: HTML, stylesheet and script as strings, served from the
// server's own origin (the CSP allows nothing else: no inline script, no CDN). The script
// writes every text from the data with textContent, never as markup.

/** The only value put into HTML here; the manifest's name is an id, escaped all the same. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function pageHtml(o: { name: string; csrfToken: string }): string {
  const name = escapeHtml(o.name);
  const filters = [
    ["all", "All"],
    ["undecided", "Undecided"],
    ["approved", "Approved"],
    ["rejected", "Rejected"],
    ["failed", "Failed"],
    ["flagged", "Flagged by QC"],
  ]
    .map(([id, label]) => `<button type="button" data-filter="${id}" aria-pressed="${id === "all"}">${label} <span class="n"></span></button>`)
    .join("");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="csrf-token" content="${escapeHtml(o.csrfToken)}">
<title>Review · ${name} · imgbatch</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header class="top">
  <div class="head">
    <div>
      <h1>Morning review <span class="name">${name}</span></h1>
      <p class="sub">reviewing as <b id="reviewer"></b> · <span id="live" class="live off">connecting…</span></p>
    </div>
    <dl class="stats">
      <div class="stat ok"><dt>Approved</dt><dd id="n-approved">–</dd></div>
      <div class="stat bad"><dt>Rejected</dt><dd id="n-rejected">–</dd></div>
      <div class="stat"><dt>Undecided</dt><dd id="n-undecided">–</dd></div>
      <div class="stat fail"><dt>Failed</dt><dd id="n-failed">–</dd></div>
      <div class="stat flag"><dt>Flagged</dt><dd id="n-flagged">–</dd></div>
      <div class="stat wait"><dt>On their way</dt><dd id="n-pending">–</dd></div>
    </dl>
  </div>
  <nav class="filters" aria-label="Filters">${filters}
    <input id="q" type="search" placeholder="Search key or prompt  ( / )" aria-label="Search by key or prompt" autocomplete="off">
    <span id="shown"></span>
  </nav>
</header>
<main class="layout">
  <section id="strip" class="strip" aria-label="Images by row"><p class="empty">Loading…</p></section>
  <section class="view" aria-label="Selected image">
    <div class="stage"><img id="big" alt="" hidden><p id="nobig" class="noimg" hidden></p></div>
    <div class="detail">
      <div class="title"><h2 id="key"></h2><span id="badge" class="badge"></span></div>
      <div class="actions">
        <button type="button" id="approve" class="approve"><kbd>a</kbd> Approve</button>
        <button type="button" id="reject" class="reject"><kbd>r</kbd> Reject</button>
        <button type="button" id="undo"><kbd>u</kbd> Undo</button>
        <button type="button" id="note-open"><kbd>n</kbd> Note</button>
        <button type="button" id="prev"><kbd>←</kbd> Previous</button>
        <button type="button" id="next"><kbd>→</kbd> Next</button>
      </div>
      <div id="note-box" class="note-box" hidden>
        <input id="note" type="text" maxlength="2000" aria-label="Note on this image (Enter saves, Escape cancels)" placeholder="A note on this image: Enter saves, Escape cancels" autocomplete="off">
      </div>
      <p id="note-view" class="note" hidden></p>
      <p id="prompt" class="prompt"></p>
      <dl id="settings" class="settings"></dl>
      <figure id="reference" class="reference" hidden><img id="reference-img" alt="the reference image"><figcaption>reference</figcaption></figure>
      <ul id="flags" class="flags" aria-label="Quality flags"></ul>
      <p id="error" class="error" hidden></p>
      <h3>Decisions</h3>
      <ol id="history" class="history"></ol>
    </div>
  </section>
</main>
<footer class="keys"><kbd>←</kbd><kbd>→</kbd> or <kbd>j</kbd><kbd>k</kbd> move · <kbd>a</kbd> approve · <kbd>r</kbd> reject · <kbd>u</kbd> undo · <kbd>n</kbd> note · <kbd>/</kbd> search</footer>
<div id="toast" class="toast" role="status" hidden></div>
</body>
</html>
`;
}

export const PAGE_CSS = `
.reference{margin:8px 0}.reference img{max-width:160px;max-height:160px;border:1px solid #d6dae1;border-radius:4px}.reference figcaption{font-size:12px;color:#6b7380}
*{box-sizing:border-box}[hidden]{display:none!important}
html,body{height:100%}
body{margin:0;display:flex;flex-direction:column;background:#f4f5f7;color:#1d2330;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
kbd{font:600 11px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;border:1px solid #cfd5dd;border-bottom-width:2px;border-radius:4px;padding:0 5px;background:#fff;color:#3d4554}
.top{background:#fff;border-bottom:1px solid #dde1e7;padding:12px 20px 10px;box-shadow:0 1px 3px rgba(20,30,50,.06)}
.head{display:flex;flex-wrap:wrap;align-items:flex-end;justify-content:space-between;gap:10px 28px}
h1{margin:0;font-size:20px;letter-spacing:-.01em}h1 .name{font:600 16px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:#5d6676;margin-left:6px}
.sub{margin:2px 0 0;color:#5d6676;font-size:13px}
.live::before{content:"";display:inline-block;width:8px;height:8px;border-radius:50%;margin-right:5px;background:#2e9e66;vertical-align:1px}.live.off::before{background:#c9ced6}
.stats{display:flex;flex-wrap:wrap;gap:6px 22px;margin:0}.stat dt{font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:#6b7380}
.stat dd{margin:0;font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}
.stat.ok dd{color:#1f7a4d}.stat.bad dd{color:#c0392b}.stat.fail dd{color:#8f2418}.stat.flag dd{color:#b35c00}.stat.wait dd{color:#9a6b00}
.filters{display:flex;flex-wrap:wrap;align-items:center;gap:6px 8px;margin-top:10px;font-size:13px}
button,input{font:inherit;color:inherit;border:1px solid #cfd5dd;border-radius:6px;background:#fff;padding:4px 10px}
button{cursor:pointer;background:#f1f3f6}button:hover{background:#e6e9ee}
button:focus-visible,input:focus{outline:2px solid #3b6fd4;outline-offset:1px}
.filters button[aria-pressed=true]{background:#1d2330;border-color:#1d2330;color:#fff}
.filters .n{color:#7b8494;font-variant-numeric:tabular-nums}.filters button[aria-pressed=true] .n{color:#c5ccd8}
#q{width:240px;margin-left:8px}#shown{margin-left:auto;color:#5d6676}
.layout{flex:1;display:flex;min-height:0}
.strip{width:470px;flex:none;overflow-y:auto;padding:14px 14px 40px 20px;border-right:1px solid #dde1e7}
.row{background:#fff;border:1px solid #e0e4ea;border-radius:10px;padding:8px 10px 10px;margin-bottom:12px}
.row h2{display:flex;align-items:baseline;gap:8px;margin:0 0 7px;font-size:13px}
.row h2 span{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}.row h2 small{font-weight:400;color:#6b7380;font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:8px}
.card{position:relative;display:flex;flex-direction:column;width:92px;padding:0;border:2px solid #dde1e7;border-radius:8px;background:#fff;overflow:hidden;text-align:left}
.card:hover{border-color:#b9c2ce;background:#fff}
.card.sel{border-color:#3b6fd4;box-shadow:0 0 0 3px rgba(59,111,212,.35)}
.card .th{display:flex;align-items:center;justify-content:center;aspect-ratio:1/1;background:#eceef2;overflow:hidden}
.card img{width:100%;height:100%;object-fit:contain;display:block}
.card .th.fail{background:repeating-linear-gradient(135deg,#fdecea 0 8px,#fbe3e0 8px 16px);color:#8f2418;font:600 10px ui-monospace,monospace;padding:4px;text-align:center;overflow-wrap:anywhere}
.card .th.wait{background:repeating-linear-gradient(135deg,#f5f1e6 0 8px,#efe9da 8px 16px);color:#8a6a1f;font-size:10px;text-transform:uppercase;letter-spacing:.06em}
.card .k{font:600 10px/1.3 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;padding:3px 5px 4px;height:3.2em;overflow-wrap:anywhere;display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden}
.card.approved{border-color:#2e9e66}.card.rejected{border-color:#d64535}.card.rejected img{opacity:.55}
.card.sel.approved,.card.sel.rejected{box-shadow:0 0 0 3px rgba(59,111,212,.55)}
.mark{position:absolute;top:4px;left:4px;min-width:18px;height:18px;border-radius:9px;font:700 11px/18px system-ui,sans-serif;text-align:center;color:#fff;padding:0 4px}
.mark.approved{background:#2e9e66}.mark.rejected{background:#d64535}
.mark.flag{left:auto;right:4px;background:#e08a1e}
.view{flex:1;display:flex;min-width:0;gap:20px;padding:16px 20px 24px;overflow:hidden}
.stage{flex:1;min-width:0;display:flex;align-items:center;justify-content:center;background:#e9ecf0;border-radius:12px;border:1px solid #dde1e7;overflow:hidden}
.stage img{max-width:100%;max-height:100%;object-fit:contain;display:block;box-shadow:0 2px 10px rgba(0,0,0,.18)}
.noimg{color:#6b7380;font-size:15px;padding:20px;text-align:center}
.detail{width:330px;flex:none;overflow-y:auto;display:flex;flex-direction:column;gap:10px}
.title{display:flex;align-items:center;gap:8px;flex-wrap:wrap}
.title h2{margin:0;font:600 15px/1.3 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
.badge{font-size:12px;font-weight:600;border-radius:999px;padding:2px 10px;background:#eef1f5;color:#454e5e}
.badge.approved{background:#dff3e8;color:#1f7a4d}.badge.rejected{background:#fbe3e0;color:#a52d20}
.actions{display:grid;grid-template-columns:1fr 1fr;gap:6px}.actions button{padding:6px 10px;text-align:left}
.actions .approve{background:#e3f4ea;border-color:#9fd3b4}.actions .approve:hover{background:#cdebd9}
.actions .reject{background:#fbe7e4;border-color:#eab0a8}.actions .reject:hover{background:#f6d2cc}
.actions button:disabled{opacity:.45;cursor:default}
.note-box input{width:100%}
.note{margin:0;padding:6px 10px;border-left:3px solid #e0a82e;background:#fff8e6;white-space:pre-wrap;overflow-wrap:anywhere}
.prompt{margin:0;color:#3d4554;overflow-wrap:anywhere;white-space:pre-wrap}
.settings{display:grid;grid-template-columns:auto 1fr;gap:2px 12px;margin:0;font-size:13px}
.settings dt{color:#6b7380}.settings dd{margin:0;overflow-wrap:anywhere}
.flags{margin:0;padding:0;list-style:none;display:flex;flex-direction:column;gap:4px}
.flags li{font-size:12.5px;background:#fff1dd;color:#7a4200;border-radius:6px;padding:4px 8px}
.error{margin:0;font-size:13px;color:#8f2418;background:#fdecea;border-radius:6px;padding:6px 8px;overflow-wrap:anywhere}
h3{margin:6px 0 0;font-size:12px;text-transform:uppercase;letter-spacing:.06em;color:#6b7380}
.history{margin:0;padding-left:18px;font-size:12.5px;color:#3d4554}.history li{margin-bottom:3px;overflow-wrap:anywhere}.history .old{color:#8a93a3}
.empty{color:#6b7380;text-align:center;margin:40px 0}
.keys{padding:6px 20px;border-top:1px solid #dde1e7;background:#fff;color:#5d6676;font-size:12px}.keys kbd{margin:0 1px}
.toast{position:fixed;bottom:44px;left:50%;transform:translateX(-50%);background:#1d2330;color:#fff;padding:8px 14px;border-radius:8px;box-shadow:0 4px 14px rgba(0,0,0,.25);max-width:80vw}
@media (max-width:900px){.layout{flex-direction:column}.strip{width:auto;max-height:40vh;border-right:0;border-bottom:1px solid #dde1e7}.view{flex-direction:column;overflow:auto}.detail{width:auto}.stage{min-height:300px}}
`;

// One state object, one render: data comes from /api/items (again whenever the server's event
// stream says the store moved); decisions go out as POSTs with the CSRF header.

export { PAGE_SCRIPT } from "./page-script.js";
