"""The page ``wsconform serve`` answers at ``GET /``: any browser that opens it runs the whole selection.

It is the smallest client that honours the client contract with the browser's own ``WebSocket``: for
each case of ``/cases.json`` it connects to ``/case/<id>?agent=NAME`` offering the case's subprotocols,
echoes every message with its type, lets the browser answer closes, and moves on at the close event.
The verdicts are the server's (``/results.json``); what the page saw is shown beside them, never
judged. Text from verdicts is inserted with ``textContent`` only. Kept in a module rather than a data
file so that it ships with the package without packaging rules.
"""

from __future__ import annotations

from harness.report.model import COLOURS

_CSS = "\n".join(f"td.o.{name} {{ background: {colour}; }}" for name, colour in COLOURS.items())

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>wsconform serve</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em; }
table { border-collapse: collapse; }
th, td { padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
td.o { font-weight: 600; white-space: nowrap; }
code { font-size: 13px; }
/*COLOURS*/
</style>
</head>
<body data-state="loading">
<h1>wsconform serve</h1>
<p id="status">loading the case list…</p>
<p>Add <code>?agent=NAME</code> to this page's address to record the results under another name.</p>
<table>
<thead><tr><th>case</th><th>what this browser saw</th><th>outcome</th><th>reason</th></tr></thead>
<tbody id="rows"></tbody>
</table>
<script>
"use strict";
const params = new URLSearchParams(location.search);
const base = (location.protocol === "https:" ? "wss://" : "ws://") + location.host;
const statusLine = document.getElementById("status");
const rows = new Map();

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function runCase(c, agent) {
  return new Promise((resolve) => {
    // whatwg=1: this is the browser's WebSocket API, so rules with `binding: whatwg` bind it
    const url = base + "/case/" + encodeURIComponent(c.id) + "?whatwg=1&agent=" + encodeURIComponent(agent);
    const seen = [];
    let ws = null;
    let ended = false;
    const limit = c.timeout + 5;
    const end = (text) => {
      if (!ended) { ended = true; clearTimeout(guard); resolve(text); }
    };
    const guard = setTimeout(() => {
      try { if (ws) ws.close(); } catch (e) { /* already closing */ }
      seen.push("no close event within " + limit + " s");
      end(seen.join(", "));
    }, limit * 1000);
    try {
      ws = new WebSocket(url, c.protocols);
    } catch (e) {
      end("the constructor threw " + e.name);
      return;
    }
    ws.binaryType = "arraybuffer";
    ws.onopen = () => seen.push("open" + (ws.protocol ? " (" + ws.protocol + ")" : ""));
    ws.onerror = () => seen.push("error");
    ws.onmessage = (ev) => {
      try { ws.send(ev.data); } catch (e) { seen.push("send threw " + e.name); }
    };
    ws.onclose = (ev) => {
      seen.push("close " + ev.code + (ev.wasClean ? " clean" : ""));
      end(seen.join(", "));
    };
  });
}

async function results(agent) {
  const r = await fetch("/results.json?agent=" + encodeURIComponent(agent), { cache: "no-store" });
  return await r.json();
}

function show(doc, since) {
  let fresh = 0;
  for (const [id, r] of Object.entries(doc.results)) {
    const row = rows.get(id);
    if (!row || r.seq <= since) continue;
    fresh += 1;
    row.outcome.textContent = r.outcome;
    row.outcome.className = "o " + r.outcome;
    row.reason.textContent = r.reason;
  }
  return fresh;
}

async function main() {
  const info = await (await fetch("/cases.json", { cache: "no-store" })).json();
  const agent = params.get("agent") || info.agent;
  const tbody = document.getElementById("rows");
  for (const c of info.cases) {
    const tr = document.createElement("tr");
    tr.dataset.case = c.id;
    cell(tr, c.id).title = c.title;
    rows.set(c.id, { seen: cell(tr, ""), outcome: cell(tr, "", "o"), reason: cell(tr, "") });
    tbody.appendChild(tr);
  }
  const since = (await results(agent)).seq;
  document.body.dataset.state = "running";
  const started = performance.now();
  for (const [i, c] of info.cases.entries()) {
    statusLine.textContent = `case ${i + 1} of ${info.cases.length} as ${agent}@client: ${c.id}`;
    rows.get(c.id).seen.textContent = await runCase(c, agent);
    results(agent).then((doc) => show(doc, since)).catch(() => {});
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  document.body.dataset.seconds = seconds;
  let recorded = 0;
  let stopped = false;
  for (let tries = 0; tries < 40 && recorded < info.cases.length; tries++) {
    try {
      recorded = show(await results(agent), since);
    } catch (e) {
      stopped = true; // the server ended (--until-done) once the last result was in
      break;
    }
    if (recorded < info.cases.length) await new Promise((r) => setTimeout(r, 250));
  }
  statusLine.textContent = info.cases.length + " cases run as " + agent + "@client in " + seconds + " s" +
    (stopped ? "; the server has stopped and written its report" : "; " + recorded + " verdicts recorded");
  document.body.dataset.state = "done";
}

main().catch((e) => {
  statusLine.textContent = "error: " + e;
  document.body.dataset.state = "error";
});
</script>
</body>
</html>
""".replace("/*COLOURS*/", _CSS)
