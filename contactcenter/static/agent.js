// The agent console: one WebSocket to /api/v1/agents/ws (docs/api.md). Text only through textContent.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let socket = null;
  let token = sessionStorage.getItem("cc.agent.token") || "";
  let pending = null; // the offer shown: {reservation, card}
  const conversations = new Map(); // id → {channel, queue, card, messages: [{direction, body}]}
  let current = null;
  // The phone call on the line: ringing (a call offered), connecting (accepted), in_progress, ended (docs/api.md).
  let phone = null; // {state, from, since, duration}
  let wrapUntil = null; // when the wrap-up ends by itself, while in wrap-up

  // A call's provider id is Twilio's CallSid ("CA…"); a voice contact that is no call (a voicemail) is not rung.
  function isCall(interaction) { return interaction.channel === "voice" && interaction.provider_id.startsWith("CA"); }
  function clock(seconds) {
    const s = Math.max(0, Math.round(seconds));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }
  function drawPhone() {
    if (!phone) { $("call").classList.add("hidden"); return; }
    $("call").classList.remove("hidden");
    $("call").dataset.callState = phone.state;
    const from = phone.from ? " from " + phone.from : "";
    const text = {
      ringing: "Incoming call" + from + " — ringing",
      connecting: "Connecting the call" + from + "…",
      in_progress: "On the call" + from + " — " + clock((Date.now() - Date.parse(phone.since)) / 1000),
      ended: "Call ended" + from + " — lasted " + clock(phone.duration || 0),
    }[phone.state];
    $("call-state").textContent = text;
  }
  function drawState(state) {
    const until = state === "wrap_up" && wrapUntil ? " until " + new Date(wrapUntil).toLocaleTimeString() + " (Available: ready now)" : "";
    $("state").textContent = "you are " + (state === "wrap_up" ? "in wrap-up" : state) + until;
    $("ready").textContent = state === "wrap_up" ? "Ready" : "Available";
  }

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
        wrapUntil = frame.state === "wrap_up" ? frame.until || null : null;
        drawState(frame.state);
        break;
      case "call":
        phone = { state: frame.state, from: phone && phone.from, since: frame.since, duration: frame.duration_seconds };
        drawPhone();
        break;
      case "offer":
        pending = frame;
        if (isCall(frame.reservation.interaction)) {
          phone = { state: "ringing", from: frame.reservation.interaction.from_address, since: null, duration: null };
          drawPhone();
        }
        $("offer-what").textContent = frame.reservation.interaction.channel + " in " + frame.reservation.queue + ": “" + frame.reservation.interaction.body + "”";
        $("offer").classList.remove("hidden");
        showCard(frame.card);
        $("accept").focus();
        break;
      case "revoked":
        if (pending && pending.reservation.id === frame.reservation_id) {
          if (phone && (phone.state === "ringing" || phone.state === "connecting")) { phone = null; drawPhone(); }
          pending = null;
          $("offer").classList.add("hidden");
        }
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
        if (phone && phone.state === "ringing") { phone = null; drawPhone(); }
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
      case "transferred":
      case "closed": // closed without the agent (its card was erased): nothing to complete
        conversations.delete(frame.conversation_id);
        if (current === frame.conversation_id) { current = null; $("conversation").classList.add("hidden"); $("card").classList.add("hidden"); }
        drawConversations();
        notice(frame.type === "closed" ? "the conversation was closed (" + frame.reason + ")"
          : frame.type === "transferred" ? "transferred to " + frame.queue : "wrapped up");
        break;
      case "error":
        if (phone && phone.state === "connecting") { phone.state = "ringing"; drawPhone(); } // accept again
        notice("refused: " + frame.error.message);
        break;
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(scheme + "//" + location.host + "/api/v1/agents/ws?calls=true&token=" + encodeURIComponent(token));
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
  $("accept").addEventListener("click", () => {
    if (!pending) return;
    if (phone && phone.state === "ringing" && isCall(pending.reservation.interaction)) { phone.state = "connecting"; drawPhone(); }
    send({ type: "accept", reservation_id: pending.reservation.id });
  });
  $("reject").addEventListener("click", () => { if (pending) send({ type: "reject", reservation_id: pending.reservation.id }); });
  $("send").addEventListener("click", () => {
    const text = $("reply").value.trim();
    if (current && text) { send({ type: "reply", conversation_id: current, text }); $("reply").value = ""; }
  });
  $("reply").addEventListener("keydown", (event) => { if (event.key === "Enter" && event.ctrlKey) $("send").click(); });
  $("complete").addEventListener("click", () => { if (current) send({ type: "complete", conversation_id: current }); });
  $("transfer").addEventListener("click", () => {
    const queue = $("transfer-queue").value.trim();
    if (current && queue) { send({ type: "transfer", conversation_id: current, queue }); $("transfer-queue").value = ""; }
  });
  document.addEventListener("keydown", (event) => {
    if (!pending || event.target instanceof HTMLTextAreaElement || event.target instanceof HTMLInputElement) return;
    if (event.key === "a" || event.key === "A") $("accept").click();
    if (event.key === "r" || event.key === "R") $("reject").click();
  });
  // The call's running time, and the wrap-up's end, move with the clock.
  setInterval(() => { if (phone && phone.state === "in_progress") drawPhone(); }, 1000);
  if (token) connect();
})();
