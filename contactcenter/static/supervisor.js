// The wallboard: reads the figures' stream (Server-Sent Events) and draws them. Text only through textContent.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let source = null;
  let figures = null;
  let token = sessionStorage.getItem("cc.supervisor.token") || "";

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function secondsText(s) {
    if (s === null || s === undefined) return "–";
    s = Math.max(0, Math.round(s));
    const m = Math.floor(s / 60);
    return m ? m + "m " + String(s % 60).padStart(2, "0") + "s" : s + "s";
  }
  function percent(v) { return v === null || v === undefined ? "–" : Math.round(v * 100) + "%"; }
  function waitedSince(iso) { return iso ? (Date.now() - Date.parse(iso)) / 1000 : 0; }

  function tile(q) {
    const wait = waitedSince(q.oldest_waiting_since);
    const late = q.alert || (q.waiting > 0 && wait > q.service_level_target_seconds);
    const box = el("article", null, "tile" + (late ? " alert" : ""));
    box.setAttribute("aria-label", "queue " + q.name + (late ? ", past its target" : ""));
    box.dataset.queue = q.name;
    box.append(el("h2", q.name));
    const big = el("div", q.waiting, "big");
    big.dataset.figure = "waiting";
    box.append(big, el("div", "waiting · longest " + secondsText(q.waiting ? wait : 0), "wait"));
    const list = el("dl", null, "figures");
    const rows = [
      ["Offered", q.offered], ["Answered", q.answered], ["Abandoned", q.abandoned],
      ["Service level", percent(q.service_level) + " (goal " + percent(q.service_level_goal) + " in " + q.service_level_target_seconds + "s)"],
      ["ASA", secondsText(q.asa_seconds)], ["AHT", secondsText(q.aht_seconds)],
      ["Agents available", q.agents.available], ["Agents busy", q.agents.busy],
      ["Agents in wrap-up", q.agents.wrap_up],
    ];
    for (const [name, value] of rows) list.append(el("dt", name), el("dd", value));
    box.append(list);
    return box;
  }

  function agentRow(a) {
    const tr = el("tr");
    tr.dataset.agent = a.name;
    const work = a.working.length + " working" + (a.offered.length ? ", " + a.offered.length + " offered" : "");
    // A call occupies the agent whatever else it does: the row says so, and for how long.
    const state = el("td", a.call ? a.state + " · on a call " + secondsText(waitedSince(a.call_since)) : a.state);
    state.dataset.field = "state";
    tr.append(el("td", a.name), state, el("td", a.since ? secondsText(waitedSince(a.since)) : "–"),
      el("td", work), el("td", a.handled_today));
    const cell = el("td");
    const choose = el("select");
    choose.setAttribute("aria-label", "set " + a.name + "'s state");
    for (const s of ["", "available", "away", "offline"]) {
      const opt = el("option", s || "set state…");
      opt.value = s;
      choose.append(opt);
    }
    choose.addEventListener("change", () => { if (choose.value) setState(a.id, choose.value); });
    cell.append(choose);
    tr.append(cell);
    return tr;
  }

  function draw() {
    if (!figures) return;
    $("tiles").replaceChildren(...figures.queues.map(tile));
    $("states").replaceChildren(...Object.entries(figures.overall.agents).map(([s, n]) => el("span", s + ": " + n)));
    $("agents").replaceChildren(...figures.agents.map(agentRow));
    const most = Math.max(1, ...figures.intervals.map((i) => i.offered));
    $("chart").replaceChildren(...figures.intervals.flatMap((i) => {
      const bar = el("div", null, "bar");
      bar.style.height = (100 * i.offered / most) + "%";
      bar.title = i.start.slice(11, 16) + ": " + i.offered + " offered, " + i.answered + " answered";
      const lost = el("div", null, "bar abandoned");
      lost.style.height = (100 * i.abandoned / most) + "%";
      lost.title = i.start.slice(11, 16) + ": " + i.abandoned + " abandoned";
      return [bar, lost];
    }));
  }

  async function setState(agentId, state) {
    const answer = await fetch("/api/v1/supervisor/agents/" + encodeURIComponent(agentId) + "/state", {
      method: "POST", headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
      body: JSON.stringify({ state }),
    });
    if (!answer.ok) $("connection").textContent = "could not set the state (" + answer.status + ")";
  }

  function connect() {
    if (source) source.close();
    source = new EventSource("/api/v1/supervisor/stream?token=" + encodeURIComponent(token));
    source.onopen = () => { $("connection").textContent = "live"; };
    source.onmessage = (event) => { figures = JSON.parse(event.data); draw(); };
    source.onerror = () => {
      $("connection").textContent = "reconnecting…";
      fetch("/api/v1/queues/stats", { headers: { "Authorization": "Bearer " + token } }).then((r) => {
        if (r.status === 401 || r.status === 403) signOut("that token may not watch queues");
      }).catch(() => {});
    };
    const today = new Date().toISOString().slice(0, 10);
    $("csv").href = "#";
    $("csv").onclick = async (e) => {
      e.preventDefault();
      const r = await fetch("/api/v1/queues/history.csv?from=" + today, { headers: { "Authorization": "Bearer " + token } });
      const link = el("a");
      link.href = URL.createObjectURL(await r.blob());
      link.download = "queues-" + today + ".csv";
      link.click();
    };
    $("signin").classList.add("hidden");
    for (const id of ["board", "signout", "csv"]) $(id).classList.remove("hidden");
  }

  function signOut(why) {
    if (source) source.close();
    source = null;
    token = "";
    sessionStorage.removeItem("cc.supervisor.token");
    for (const id of ["board", "signout", "csv"]) $(id).classList.add("hidden");
    $("signin").classList.remove("hidden");
    $("connection").textContent = why || "signed out";
    $("token").focus();
  }

  $("signin").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token").value.trim();
    $("token").value = "";
    sessionStorage.setItem("cc.supervisor.token", token);
    connect();
  });
  $("signout").addEventListener("click", () => signOut());
  setInterval(draw, 1000); // waits grow between frames
  if (token) connect();
})();
