/* contactcenter chat widget: <script src="https://<service>/chat/widget.js"></script> embeds it.
   Keeps the visitor's token (and messages not yet acknowledged) in localStorage: a reload or a dropped
   connection resumes the same conversation, and a message is sent again until the service acknowledges it. */
(function () {
  "use strict";
  var script = document.currentScript;
  var base = new URL(script.src, location.href);
  var origin = base.origin;
  var socketUrl = origin.replace(/^http/, "ws") + "/chat/ws";
  var storeKey = "ccw:" + origin;
  var saved = load();
  var seen = 0;
  var socket = null;
  var retryMs = 500;
  var failedOpens = 0;  // connections closed before any welcome, in a row
  var lastTyping = 0;
  var typingShown = null;

  function load() {
    try { return JSON.parse(localStorage.getItem(storeKey)) || {}; } catch (e) { return {}; }
  }
  function save() {
    try { localStorage.setItem(storeKey, JSON.stringify({ token: saved.token, pending: saved.pending || [] })); } catch (e) { /* private mode */ }
  }
  function newId() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text) { node.textContent = text; }
    return node;
  }

  var style = el("link", { rel: "stylesheet", href: origin + "/chat/widget.css" });
  document.head.appendChild(style);
  var launcher = el("button", { type: "button", "class": "ccw-launcher", "aria-expanded": "false", "aria-controls": "ccw-panel" }, "Chat with us");
  var panel = el("section", { id: "ccw-panel", "class": "ccw-panel", role: "dialog", "aria-labelledby": "ccw-title", hidden: "" });
  var head = el("div", { "class": "ccw-head" });
  head.appendChild(el("h2", { id: "ccw-title" }, "Chat"));
  var endButton = el("button", { type: "button", "class": "ccw-end" }, "End chat");
  var closeButton = el("button", { type: "button", "aria-label": "Close the chat window" }, "Close");
  var buttons = el("div");
  buttons.appendChild(endButton);
  buttons.appendChild(closeButton);
  head.appendChild(buttons);
  var status = el("p", { "class": "ccw-status", role: "status", "aria-live": "polite" }, "Connecting…");
  var log = el("ol", { "class": "ccw-log", role: "log", "aria-live": "polite", "aria-label": "Messages" });
  var form = el("form", { "class": "ccw-form" });
  var label = el("label", { "for": "ccw-text", "class": "ccw-sr" }, "Your message");
  var input = el("textarea", { id: "ccw-text", name: "text", rows: "2", maxlength: "4000", placeholder: "Type a message", autocomplete: "off" });
  var sendButton = el("button", { type: "submit" }, "Send");
  // Shown when no agent is there: how to get back to the visitor (a claim the agent sees, never proof).
  var contact = el("fieldset", { "class": "ccw-contact", hidden: "" });
  contact.appendChild(el("legend", {}, "Leave a message: how can we reach you?"));
  var emailLabel = el("label", { "for": "ccw-email" }, "Email");
  var emailInput = el("input", { id: "ccw-email", type: "email", name: "email", autocomplete: "email" });
  var phoneLabel = el("label", { "for": "ccw-phone" }, "Phone");
  var phoneInput = el("input", { id: "ccw-phone", type: "tel", name: "phone", autocomplete: "tel" });
  [emailLabel, emailInput, phoneLabel, phoneInput].forEach(function (node) { contact.appendChild(node); });
  form.appendChild(contact);
  form.appendChild(label);
  form.appendChild(input);
  form.appendChild(sendButton);
  panel.appendChild(head);
  panel.appendChild(status);
  panel.appendChild(log);
  panel.appendChild(form);
  document.body.appendChild(launcher);
  document.body.appendChild(panel);

  function open() {
    panel.hidden = false;
    launcher.hidden = true;
    launcher.setAttribute("aria-expanded", "true");
    input.focus();
  }
  function close() {
    panel.hidden = true;
    launcher.hidden = false;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }
  launcher.addEventListener("click", open);
  closeButton.addEventListener("click", close);
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") { close(); } });

  function note(text) {
    log.appendChild(el("li", { "class": "ccw-note" }, text));
    log.scrollTop = log.scrollHeight;
  }
  function bubble(from, id, text) {
    var item = el("li", { "class": "ccw-" + from, "data-id": id });
    item.appendChild(el("span", { "class": "ccw-sr" }, from === "agent" ? "Agent: " : "You: "));
    item.appendChild(document.createTextNode(text));
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }
  function pendingItem(id) {
    return log.querySelector('li.ccw-pending[data-id="' + CSS.escape(id) + '"]');
  }
  function show(entry) {
    if (entry.seq <= seen) { return; }
    seen = entry.seq;
    var waiting = entry.from === "visitor" ? pendingItem(entry.id) : null;
    if (waiting) {
      waiting.classList.remove("ccw-pending");
      log.appendChild(waiting);  // in the transcript's order
    } else {
      bubble(entry.from, entry.id, entry.text);
    }
  }
  function transmit(message) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "message", id: message.id, text: message.text }));
    }
  }

  function connect() {
    var query = "?after=" + seen + (saved.token ? "&token=" + encodeURIComponent(saved.token) : "");
    socket = new WebSocket(socketUrl + query);
    socket.addEventListener("message", function (event) {
      var frame = JSON.parse(event.data);
      if (frame.type === "welcome") {
        retryMs = 500;
        failedOpens = -1;
        saved.token = frame.token;
        save();
        if (!frame.open_now && !frame.history.length) {
          status.textContent = "We are closed now. Leave a message with your email or phone: we will get back to you.";
          contact.hidden = false;
        } else if (frame.agents_available || frame.history.length) {
          status.textContent = "Connected. An agent will answer here.";
        } else {
          status.textContent = "No agent is available right now. Leave a message with your email or phone: we will get back to you.";
          contact.hidden = false;
        }
        frame.history.forEach(show);
        if (frame.ended) { note("This chat has ended. Write to start a new one."); }
        (saved.pending || []).forEach(transmit);
      } else if (frame.type === "message") {
        if (frame.from === "agent") { clearTimeout(typingShown); status.textContent = "Connected."; }
        show(frame);
      } else if (frame.type === "ack") {
        saved.pending = (saved.pending || []).filter(function (message) { return message.id !== frame.id; });
        save();
      } else if (frame.type === "agent") {
        if (frame.activity === "typing") {
          status.textContent = frame.name + " is typing…";
          clearTimeout(typingShown);
          typingShown = setTimeout(function () { status.textContent = "Connected."; }, 4000);
        } else {
          note(frame.name + (frame.activity === "joined" ? " joined the chat." : " left the chat."));
        }
      } else if (frame.type === "identified") {
        status.textContent = "Thank you: we will get back to you" + (frame.email ? " at " + frame.email : frame.phone ? " at " + frame.phone : "") + ".";
      } else if (frame.type === "ended") {
        note("The chat has ended.");
      } else if (frame.type === "error") {
        status.textContent = frame.error.message;
        if (frame.error.id && frame.error.code === "unavailable") {
          setTimeout(function () { (saved.pending || []).forEach(transmit); }, 2000);
        } else if (frame.error.id) {
          saved.pending = (saved.pending || []).filter(function (message) { return message.id !== frame.error.id; });
          save();
        }
      }
    });
    failedOpens = Math.max(failedOpens, 0);
    socket.addEventListener("close", function (event) {
      if (failedOpens >= 0) { failedOpens += 1; }
      // A token refused again and again (expired, or the service's key changed): start as a new visitor.
      if (failedOpens >= 4 && saved.token) {
        delete saved.token;
        save();
      }
      if (event.code === 1008 || (event.code === 1006 && !saved.token && retryMs > 8000)) {
        status.textContent = "The chat is unavailable here.";
        return;
      }
      status.textContent = "Connection lost; reconnecting…";
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 15000);
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    if (!contact.hidden && (emailInput.value.trim() || phoneInput.value.trim()) && socket && socket.readyState === WebSocket.OPEN) {
      var claim = { type: "identify" };
      if (emailInput.value.trim()) { claim.email = emailInput.value.trim(); }
      if (phoneInput.value.trim()) { claim.phone = phoneInput.value.trim(); }
      socket.send(JSON.stringify(claim));
      contact.hidden = true;
    }
    var message = { id: newId(), text: text };
    saved.pending = (saved.pending || []).concat([message]);
    save();
    bubble("visitor", message.id, text).classList.add("ccw-pending");
    input.value = "";
    transmit(message);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  input.addEventListener("input", function () {
    var now = Date.now();
    if (socket && socket.readyState === WebSocket.OPEN && now - lastTyping > 3000) {
      lastTyping = now;
      socket.send(JSON.stringify({ type: "typing" }));
    }
  });
  endButton.addEventListener("click", function () {
    if (socket && socket.readyState === WebSocket.OPEN) { socket.send(JSON.stringify({ type: "end" })); }
  });

  (saved.pending || []).forEach(function (message) { bubble("visitor", message.id, message.text).classList.add("ccw-pending"); });
  if (script.getAttribute("data-open") === "true") { open(); }
  connect();
})();
