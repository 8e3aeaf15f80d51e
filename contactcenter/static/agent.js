// The agent console: one WebSocket to /api/v1/agents/ws (docs/api.md). Text only through textContent.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let socket = null;
  let token = sessionStorage.getItem("cc.agent.token") || "";
  let pending = null; // the offer shown: {reservation, card}
  const conversations = new Map(); // id → {channel, queue, card, messages: [{direction, body}]}
  let current = null;

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function send(message) { if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message)); }
  function notice(text) { $("notice").textContent = text; }

  function showCard(card) {
    $("card").classList.remove("hidden");
    $("card-name").textContent = card.client.display_name || "Client " + card.client.id.slice(0, 8);
    $("identities").replaceChildren(...card.identities.map((i) => el("li", i.kind + ": " + i.value + (i.verified ? " ✓" : ""))));
    $("timeline").replaceChildren(...card.timeline.map((t) => {
      const li = el("li");
      li.append(el("div", t.channel + " · " + t.direction + " · " + new Date(t.occurred_at).toLocaleString(), "meta"), el("div", t.body));
      return li;
    }));
  }

  function drawConversations() {
    $("conversations").replaceChildren(...[...conversations.entries()].map(([id, c]) => {
      const li = el("li");
      const open = el("button", c.channel + " · " + c.queue + (id === current ? " (open)" : ""));
      open.type = "button";
      open.addEventListener("click", () => openConversation(id));
      li.append(open);
      return li;
    }));
  }

  function openConversation(id) {
    current = id;
    const c = conversations.get(id);
    if (!c) { $("conversation").classList.add("hidden"); drawConversations(); return; }
    $("conversation").classList.remove("hidden");
    $("channel").textContent = c.channel;
    $("messages").replaceChildren(...c.messages.map((m) => el("li", m.body, m.direction)));
    if (c.card) showCard(c.card);
    drawConversations();
    $("reply").focus();
  }

  function remember(id, channel, queue, card, interactions) {
    const c = conversations.get(id) || { channel, queue, card, messages: [] };
    for (const i of interactions) c.messages.push({ direction: i.direction, body: i.body });
    if (card) c.card = card;
    conversations.set(id, c);
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "hello":
        $("title").textContent = "Agent console — " + frame.agent.name;
        $("connection").textContent = "connected";
        for (const c of frame.conversations) remember(c.id, c.channel, c.queue, c.card, c.interactions);
        drawConversations();
        break;
      case "state":
        $("state").textContent = "you are " + frame.state;
        break;
      case "offer":
        pending = frame;
        $("offer-what").textContent = frame.reservation.interaction.channel + " in " + frame.reservation.queue + ": “" + frame.reservation.interaction.body + "”";
        $("offer").classList.remove("hidden");
        showCard(frame.card);
        $("accept").focus();
        break;
      case "revoked":
        if (pending && pending.reservation.id === frame.reservation_id) { pending = null; $("offer").classList.add("hidden"); }
        notice("the offer was taken back (" + frame.reason + ")");
        break;
      case "accepted": {
        const offer = pending;
        pending = null;
        $("offer").classList.add("hidden");
        if (offer) remember(frame.conversation_id, offer.reservation.interaction.channel, offer.reservation.queue, offer.card, [offer.reservation.interaction]);
        openConversation(frame.conversation_id);
        break;
      }
      case "rejected":
        pending = null;
        $("offer").classList.add("hidden");
        break;
      case "message": {
        const c = conversations.get(frame.conversation_id);
        if (c) c.messages.push({ direction: "inbound", body: frame.interaction.body });
        if (frame.conversation_id === current) openConversation(current);
        notice("new message");
        break;
      }
      case "replied": {
        const c = conversations.get(frame.conversation_id);
        if (c) c.messages.push({ direction: "outbound", body: frame.interaction.body });
        if (frame.conversation_id === current) openConversation(current);
        break;
      }
      case "completed":
        conversations.delete(frame.conversation_id);
        if (current === frame.conversation_id) { current = null; $("conversation").classList.add("hidden"); $("card").classList.add("hidden"); }
        drawConversations();
        notice("wrapped up");
        break;
      case "error":
        notice("refused: " + frame.error.message);
        break;
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(scheme + "//" + location.host + "/api/v1/agents/ws?token=" + encodeURIComponent(token));
    socket.onmessage = (event) => onFrame(JSON.parse(event.data));
    socket.onclose = (event) => {
      $("connection").textContent = "disconnected";
      if (token && event.code !== 4000) setTimeout(connect, 2000);
    };
    $("signin").classList.add("hidden");
    for (const id of ["desk", "states", "signout"]) $(id).classList.remove("hidden");
  }

  function signOut() {
    token = "";
    sessionStorage.removeItem("cc.agent.token");
    if (socket) socket.close();
    for (const id of ["desk", "states", "signout"]) $(id).classList.add("hidden");
    $("signin").classList.remove("hidden");
    $("token").focus();
  }

  $("signin").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token").value.trim();
    $("token").value = "";
    sessionStorage.setItem("cc.agent.token", token);
    connect();
  });
  $("signout").addEventListener("click", signOut);
  for (const button of document.querySelectorAll("[data-state]")) {
    button.addEventListener("click", () => send({ type: "state", state: button.dataset.state }));
  }
  $("accept").addEventListener("click", () => { if (pending) send({ type: "accept", reservation_id: pending.reservation.id }); });
  $("reject").addEventListener("click", () => { if (pending) send({ type: "reject", reservation_id: pending.reservation.id }); });
  $("send").addEventListener("click", () => {
    const text = $("reply").value.trim();
    if (current && text) { send({ type: "reply", conversation_id: current, text }); $("reply").value = ""; }
  });
  $("reply").addEventListener("keydown", (event) => { if (event.key === "Enter" && event.ctrlKey) $("send").click(); });
  $("complete").addEventListener("click", () => { if (current) send({ type: "complete", conversation_id: current }); });
  document.addEventListener("keydown", (event) => {
    if (!pending || event.target instanceof HTMLTextAreaElement || event.target instanceof HTMLInputElement) return;
    if (event.key === "a" || event.key === "A") $("accept").click();
    if (event.key === "r" || event.key === "R") $("reject").click();
  });
  if (token) connect();
})();
