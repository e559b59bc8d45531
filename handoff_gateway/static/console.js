/* Agent console — no build step. Everything users and agents write is shown with textContent.
   This file: sign-in, the websocket, the queue and offers, tabs with their transcript and reply box, typing,
   shortcuts. console-i18n.js (words), -notify (alerts), -list, -board and -panel are loaded before it. */
(function () {
  "use strict";
  var TC = window.TriageConsole, $ = TC.$, el = TC.el, btn = TC.btn, t = TC.t;
  var TYPING_SHOWN_MS = 4000, TYPING_EVERY_MS = 2500;
  var S = { token: sessionStorage.getItem("agent-token"), ws: null, retry: 0, queue: [], tabs: {}, order: [], closed: {}, active: null };

  TC.api = function (method, path, body) {
    return fetch(path, { method: method, headers: { "Content-Type": "application/json", Authorization: "Bearer " + S.token }, body: body ? JSON.stringify(body) : undefined })
      .then(function (r) {
        if (r.status === 204) return null;
        return r.json().then(function (j) { if (!r.ok) { var e = new Error(j.detail || r.status); e.status = r.status; throw e; } return j; });
      });
  };
  function send(obj) { if (S.ws && S.ws.readyState === 1) S.ws.send(JSON.stringify(obj)); }

  document.querySelectorAll(".lang-toggle").forEach(function (b) { b.addEventListener("click", function () { TC.setLang(TC.lang === "zh" ? "en" : "zh"); }); });
  $("login-form").addEventListener("submit", function (e) {
    e.preventDefault();
    fetch("/api/v1/agents/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name: $("login-name").value, password: $("login-password").value }) })
      .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.detail); return j; }); })
      .then(function (j) { S.token = j.token; sessionStorage.setItem("agent-token", j.token); start(); })
      .catch(function (err) { $("login-error").textContent = err.message; });
  });
  $("logout").addEventListener("click", function () {
    // End the session on the server too (its consoles close everywhere), then forget it here.
    var done = function () { sessionStorage.removeItem("agent-token"); location.reload(); };
    fetch("/api/v1/agents/logout", { method: "POST", headers: { Authorization: "Bearer " + S.token } }).then(done, done);
  });
  $("presence").addEventListener("change", function () { send({ type: "presence", status: $("presence").value }); });

  function start() { $("login").hidden = true; $("desk").hidden = false; connect(); }

  function connect() {
    var ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws/agent"); S.ws = ws;
    ws.onopen = function () { ws.send(JSON.stringify({ type: "hello", token: S.token })); };
    ws.onmessage = function (e) { handle(JSON.parse(e.data)); };
    ws.onclose = function (e) {
      if (S.ws !== ws) return;
      if (e.code === 4401) { sessionStorage.removeItem("agent-token"); $("desk").hidden = true; $("login").hidden = false; $("login-error").textContent = "session expired"; return; }
      $("conn").textContent = t("reconnecting"); setTimeout(connect, Math.min(10000, 500 * Math.pow(2, S.retry++)));
    };
  }

  function handle(f) {
    switch (f.type) {
      case "hello": hello(f); break;
      case "queue": S.queue = f.items; renderQueue(); TC.refreshList(); TC.refreshBoard(); break;
      case "offer": renderOffer(f); break;
      case "alert": showAlert(f); break;
      case "accept": delete S.closed[f.conversation_id]; openTab(f.conversation_id, true); TC.refreshList(); break;
      case "resolve": case "handback": case "transfer": S.closed[f.conversation_id] = true; closeTab(f.conversation_id); TC.refreshList(); break;
      case "typing": showTyping(f.conversation_id); break;  // transient: never a transcript row
      case "presence": if (f.status) $("presence").value = f.status; break;
      case "error": TC.showError(f); break;
      case "heartbeat": case "decline": break;
      default: if (f.conversation_id) addEvent(f.conversation_id, f, true);
    }
  }

  function hello(f) {
    TC.agent = f.agent; S.retry = 0; $("conn").textContent = "";
    $("me").textContent = f.agent.display_name + " (" + t(f.agent.role === "supervisor" ? "supervisor" : "agent") + ")";
    $("presence").value = f.presence || "offline";  // what the agent chose last, as the server says
    var first = !TC.labels;
    TC.api("GET", "/api/v1/console/labels").then(function (l) {
      TC.labels = l; TC.applyI18n(); renderQueue(); TC.startList();
      if (first) TC.startBoard(f.agent.role === "supervisor");
      Object.keys(S.tabs).forEach(function (cid) { loadCard(cid); });
    });
  }

  function note(text, ms) { var a = el("p", "error", text); $("alerts").appendChild(a); setTimeout(function () { a.remove(); }, ms); }
  function showAlert(f) {
    var who = S.queue.filter(function (q) { return q.conversation_id === f.conversation_id; })[0] || {};
    note(t("alert") + TC.customerLabel(null, who.intent, who.channel) + " (" + Math.max(0, f.remaining_seconds) + " s)", 15000);
    TC.alertUser(t("urgentEscalation"), t("alert") + TC.label("intents", who.intent), "alert-" + f.conversation_id, true);
  }
  TC.showError = function (f) {
    note((f.code === "409" ? t("taken") + " — " : "") + f.message, 8000);
    if (f.request === "accept") { var o = document.querySelector('[data-offer="' + CSS.escape(f.conversation_id) + '"]'); if (o) o.remove(); }
  };

  function slaClock(due, prefix) { var s = el("span", "sla", ""); s.dataset.due = due || ""; s.dataset.prefix = prefix; tickOne(s); return s; }
  function tickOne(s) {
    if (!s.dataset.due) return;
    s.textContent = (s.dataset.prefix ? t(s.dataset.prefix) + " " : "") + TC.countdown(s.dataset.due);
    s.classList.toggle("late", Date.parse(s.dataset.due) - Date.now() < 60000);
  }
  setInterval(function () { document.querySelectorAll(".sla[data-due]").forEach(tickOne); }, 1000);

  function describe(item) {
    return [TC.label("intents", item.intent), TC.label("reasons", item.reason), TC.label("languages", item.group), TC.label("channels", item.channel)].filter(Boolean).join(" · ");
  }
  function renderQueue() {
    var list = $("queue-list"); list.textContent = "";
    S.queue.forEach(function (item) {
      var li = el("li"); li.dataset.conversation = item.conversation_id;
      li.appendChild(el("span", "badge " + item.severity, TC.label("severities", item.severity)));
      if (item.ticket_id) li.appendChild(el("span", "badge ticket", t("ticket") + " " + item.ticket_id));
      if (item.escalated) li.appendChild(el("span", "badge urgent", "⚠ " + t("urgentEscalation")));
      li.appendChild(slaClock(item.sla ? item.sla.first_response_due : "", "due"));
      li.appendChild(el("div", null, describe(item)));
      li.appendChild(btn(t("take"), "secondary take", function () { send({ type: "accept", conversation_id: item.conversation_id }); }));
      list.appendChild(li);
    });
    document.querySelectorAll("[data-offer]").forEach(function (o) { if (!S.queue.some(function (q) { return q.conversation_id === o.dataset.offer; })) o.remove(); });
  }

  function renderOffer(f) {
    if (document.querySelector('[data-offer="' + CSS.escape(f.conversation_id) + '"]')) return;
    var box = el("div", "offer"); box.dataset.offer = f.conversation_id; box.setAttribute("role", "alertdialog"); box.setAttribute("aria-label", t("offer"));
    box.appendChild(el("strong", null, t("offer")));
    box.appendChild(el("div", null, [TC.label("severities", f.severity), describe(f)].filter(Boolean).join(" · ")));
    box.appendChild(btn(t("accept"), "accept", function () { send({ type: "accept", conversation_id: f.conversation_id }); box.remove(); }));
    box.appendChild(btn(t("decline"), "secondary", function () { send({ type: "decline", conversation_id: f.conversation_id }); box.remove(); }));
    $("offers").appendChild(box);
    setTimeout(function () { box.remove(); }, (f.expires_in || 30) * 1000);
    TC.alertUser(t("offer"), [TC.label("severities", f.severity), describe(f)].join(" · "), "offer-" + f.conversation_id, f.severity === "urgent");
  }

  // ------------------------------------------------------------------------------------------ tabs
  function tabLabel(tb) {
    tb.name.textContent = tb.card ? TC.customerLabel(tb.card.display_name, tb.card.intent.name || tb.card.handoff.intent, tb.card.channel) : "…";
    tb.badge.textContent = tb.unread ? String(tb.unread) : ""; tb.badge.hidden = !tb.unread;
  }

  function compose(tb) {
    var box = el("div", "compose"), input = el("textarea"); input.placeholder = t("placeholder"); input.setAttribute("aria-label", t("placeholder"));
    tb.input = input;
    function sendReply() { var v = input.value.trim(); if (!v) return; send({ type: "message", conversation_id: tb.cid, text: v, client_msg_id: (crypto.randomUUID ? crypto.randomUUID() : String(Date.now())) }); input.value = ""; }
    tb.send = sendReply;
    input.addEventListener("keydown", function (e) { if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendReply(); } });
    input.addEventListener("input", function () {  // the user sees "typing…": at most one signal every few seconds
      var now = Date.now(); if (input.value && now - (tb.typedAt || 0) > TYPING_EVERY_MS) { tb.typedAt = now; send({ type: "typing", conversation_id: tb.cid }); }
    });
    var row = el("div", "row");
    row.appendChild(btn(t("send"), "send", sendReply));
    row.appendChild(btn(t("note"), "secondary", function () { var v = input.value.trim(); if (v) { send({ type: "note", conversation_id: tb.cid, text: v }); input.value = ""; } }));
    row.appendChild(btn(t("transfer"), "secondary", function () { var to = prompt(t("to")); if (to == null) return; var group = to === "zh" || to === "en"; send({ type: "transfer", conversation_id: tb.cid, to_group: group ? to : null, to_agent: group ? null : to, note: input.value }); }));
    row.appendChild(btn(t("resolve"), "secondary resolve", function () { send({ type: "resolve", conversation_id: tb.cid }); }));
    row.appendChild(btn(t("handback"), "secondary", function () { send({ type: "handback", conversation_id: tb.cid }); }));
    row.querySelectorAll("button").forEach(function (b, i) { b.dataset.i18n = ["send", "note", "transfer", "resolve", "handback"][i]; });
    box.appendChild(input); box.appendChild(row);
    return box;
  }

  function openTab(cid, mine) {
    if (S.tabs[cid]) { if (mine && !S.tabs[cid].mine) { closeTab(cid); } else { select(cid); return S.tabs[cid]; } }
    var tab = btn("", null, function () { select(cid); }); tab.setAttribute("role", "tab"); tab.dataset.conversation = cid;
    var tb = { cid: cid, mine: !!mine, tab: tab, name: el("bdi", "tab-name", "…"), badge: el("span", "unread", ""), seen: {}, events: [], unread: 0, openedAt: Date.now() };
    tab.appendChild(tb.name); tab.appendChild(tb.badge); $("tabs").appendChild(tab);
    var pane = el("div", "pane"); pane.setAttribute("role", "tabpanel"); pane.dataset.conversation = cid;
    var left = el("div", "talk"); tb.transcript = el("div", "transcript"); tb.transcript.setAttribute("aria-label", t("transcript"));
    tb.typing = el("div", "typing-indicator", t("typing")); tb.typing.setAttribute("role", "status"); tb.typing.hidden = true;
    left.appendChild(tb.transcript); left.appendChild(tb.typing);
    left.appendChild(mine ? compose(tb) : el("p", "muted read-only", t("readOnly")));
    tb.ctx = el("div", "context"); tb.ctx.setAttribute("aria-label", t("context"));
    pane.appendChild(left); pane.appendChild(tb.ctx); $("panes").appendChild(pane);
    tb.pane = pane; S.tabs[cid] = tb; S.order.push(cid); tabLabel(tb);
    $("empty").hidden = true; select(cid); loadCard(cid);
    return tb;
  }
  TC.openConversation = function (cid) { return S.tabs[cid] ? select(cid) : openTab(cid, false); };
  function select(cid) {
    Object.keys(S.tabs).forEach(function (k) { var on = k === cid, tb = S.tabs[k]; tb.pane.hidden = !on; tb.tab.setAttribute("aria-selected", on ? "true" : "false"); if (on) { tb.unread = 0; tabLabel(tb); } });
    S.active = cid;
  }
  function closeTab(cid) {
    var tb = S.tabs[cid]; if (!tb) return; tb.tab.remove(); tb.pane.remove(); delete S.tabs[cid];
    S.order = S.order.filter(function (k) { return k !== cid; });
    if (S.order.length) select(S.order[0]); else { S.active = null; $("empty").hidden = false; }
  }
  function loadCard(cid) {
    TC.api("GET", "/api/v1/conversations/" + encodeURIComponent(cid) + "/context").then(function (c) {
      var tb = S.tabs[cid]; if (!tb) return;
      tb.card = c; tabLabel(tb); TC.renderCard(tb, c);
      var readOnly = tb.pane.querySelector(".read-only");
      if (readOnly && !readOnly.querySelector("button") && (c.state === "queued" || c.state === "waiting")) {
        readOnly.appendChild(btn(t("take"), "take", function () { send({ type: "accept", conversation_id: cid }); }));
      }
      c.transcript.forEach(function (ev) { addEvent(cid, ev, false); });
    }, function (e) { TC.showError({ message: e.message }); if (!S.tabs[cid].mine) closeTab(cid); });
  }

  function showTyping(cid) {
    var tb = S.tabs[cid]; if (!tb) return;
    tb.typing.hidden = false; clearTimeout(tb.typingTimer);
    tb.typingTimer = setTimeout(function () { tb.typing.hidden = true; }, TYPING_SHOWN_MS);
  }

  // ------------------------------------------------------------------------------------ transcript
  function eventText(ev) {
    if (ev.type === "message" || ev.type === "note") return ev.text || "";
    if (ev.type === "handoff") return t("reason") + TC.colon() + TC.label("reasons", ev.reason) + " · " + TC.label("severities", ev.severity);
    if (ev.type === "article_suggestion") return t("articleSuggested") + TC.colon() + (ev.text || "");
    if (ev.type === "csat") return t("rating") + " ★" + ev.score + (ev.comment ? " — " + ev.comment : "");
    if (ev.type === "assigned") return (ev.agent_name || "") + " " + t("took");
    if (ev.type === "resolved") return t("resolve");
    if (ev.type === "handback") return t("handback");
    return "[" + ev.type + "]";
  }
  function renderEvent(tb, ev) {
    var kind = ev.type === "note" || ev.type === "article_suggestion" ? "note" : ev.type === "message" ? (ev.role || "system") : ev.type === "attachment" ? "user" : "system";
    var box = el("div", "ev " + kind); box.dataset.seq = ev.seq;
    var who = el("span", "who", (ev.type === "note" ? t("note") : t(ev.role || "system")) + (ev.agent_name && ev.type !== "assigned" ? " · " + ev.agent_name : ""));
    if (ev.ts) { var time = el("time", "ts", TC.clock(ev.ts)); time.dateTime = new Date(ev.ts).toISOString(); who.appendChild(time); }
    box.appendChild(who);
    var body = el("bdi", "text");
    if (ev.type === "attachment") body.appendChild(attachmentLink(tb.cid, ev));
    else if (ev.type === "delivery_failed") body.textContent = t("undelivered") + " (" + TC.label("channels", ev.channel) + "): " + (ev.error || "");
    else body.textContent = eventText(ev);
    box.appendChild(body);
    if (ev.type === "message" && ev.role === "agent" && ev.seq != null && TC.agent && ev.agent === TC.agent.id) box.appendChild(articleButton(tb, ev));
    return box;
  }
  /* "Make this an article" on the agent's own replies: the knowledge-gap loop lists it for the KB's writers. */
  function articleButton(tb, ev) {
    var b = btn(t("makeArticle"), "link make-article", function () {
      b.disabled = true;
      TC.api("POST", "/api/v1/agent/conversations/" + encodeURIComponent(tb.cid) + "/article-suggestions", { seq: ev.seq })
        .then(function () { suggested(b); }, function (e) { b.disabled = false; TC.showError({ message: e.message }); });
    });
    b.dataset.seq = ev.seq;
    if (tb.events.some(function (x) { return x.type === "article_suggestion" && x.reply_seq === ev.seq; })) suggested(b);
    return b;
  }
  function suggested(b) { b.disabled = true; b.dataset.i18n = "articleSuggested"; b.textContent = t("articleSuggested"); }
  function addEvent(cid, ev, live) {
    if (!S.tabs[cid] && S.closed[cid]) return;  // its last events, after this agent let it go
    var tb = S.tabs[cid] || openTab(cid, true);  // the server sends events only of conversations this agent owns
    if (ev.seq != null) { if (tb.seen[ev.seq]) return; tb.seen[ev.seq] = true; }
    tb.events.push(ev);
    if (ev.type === "message" && ev.role === "user") tb.typing.hidden = true;
    if (ev.type === "article_suggestion") { var done = tb.transcript.querySelector('.make-article[data-seq="' + ev.reply_seq + '"]'); if (done) suggested(done); }
    var box = renderEvent(tb, ev), later = null;
    tb.transcript.querySelectorAll(".ev").forEach(function (e) { if (!later && ev.seq != null && Number(e.dataset.seq) > ev.seq) later = e; });
    tb.transcript.insertBefore(box, later); tb.transcript.scrollTop = tb.transcript.scrollHeight;
    var fromOthers = ev.type === "message" && ev.role !== "agent";
    if (live && fromOthers && ev.ts > tb.openedAt && (S.active !== cid || document.hidden)) { tb.unread++; tabLabel(tb); }
  }

  function attachmentLink(cid, ev) {
    // The file needs the agent's token, so it is fetched and opened as a blob, never linked directly.
    var label = "📎 " + (ev.filename || ev.kind) + " (" + Math.max(1, Math.round((ev.size || 0) / 1024)) + " KB)";
    var link = el("button", "attachment", label); link.type = "button";
    link.addEventListener("click", function () {
      fetch("/api/v1/conversations/" + encodeURIComponent(cid) + "/attachments/" + encodeURIComponent(ev.attachment_id), { headers: { Authorization: "Bearer " + S.token } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.blob(); })
        .then(function (b) { var a = document.createElement("a"); a.href = URL.createObjectURL(b); a.download = ev.filename || ev.attachment_id; document.body.appendChild(a); a.click(); a.remove(); })
        .catch(function (e) { link.textContent = label + " — " + t("openFailed") + " " + e.message; });
    });
    return link;
  }

  // ------------------------------------------------------------------------------------- shortcuts
  var KEYS = [["Alt+A", "key_accept"], ["Alt+N", "key_next"], ["Ctrl+Enter", "key_send"], ["Alt+R", "key_resolve"], ["/", "key_search"], ["?", "key_help"]];
  function renderHelp() {
    var dl = $("help-keys"); dl.textContent = "";
    KEYS.forEach(function (k) { var dt = el("dt"); dt.appendChild(el("kbd", null, k[0])); dl.appendChild(dt); dl.appendChild(el("dd", null, t(k[1]))); });
  }
  function toggleHelp(show) { $("help").hidden = !show; if (show) { renderHelp(); $("help-close").focus(); } }
  $("help-toggle").addEventListener("click", function () { toggleHelp(true); });
  $("help-close").addEventListener("click", function () { toggleHelp(false); });
  document.addEventListener("keydown", function (e) {
    if ($("desk").hidden) return;
    var typingInField = /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName), key = e.key.toLowerCase(), tb = S.tabs[S.active];
    if (e.key === "Escape" && !$("help").hidden) { toggleHelp(false); return; }
    if (e.altKey && (e.code === "KeyA" || key === "a")) {
      e.preventDefault(); var take = document.querySelector(".offer .accept") || document.querySelector("#queue-list .take"); if (take) take.click();
    } else if (e.altKey && (e.code === "KeyN" || key === "n")) {
      e.preventDefault(); if (S.order.length) select(S.order[(S.order.indexOf(S.active) + 1) % S.order.length]);
    } else if (e.altKey && (e.code === "KeyR" || key === "r")) {
      e.preventDefault(); if (tb && tb.mine) send({ type: "resolve", conversation_id: tb.cid });
    } else if ((e.ctrlKey || e.metaKey) && e.key === "Enter") {
      e.preventDefault(); if (tb && tb.send) tb.send();
    } else if (!typingInField && e.key === "?") {
      e.preventDefault(); toggleHelp($("help").hidden);
    } else if (!typingInField && e.key === "/") {
      e.preventDefault(); $("list-search").focus();
    }
  });

  /* A new language: every rendered piece again, from what is already loaded. */
  TC.rerender = function () {
    renderQueue(); TC.renderList(); TC.renderBoard(); TC.renderNotify(); if (!$("help").hidden) renderHelp();
    Object.keys(S.tabs).forEach(function (cid) {
      var tb = S.tabs[cid], events = tb.events; tabLabel(tb); if (tb.card) TC.renderCard(tb, tb.card);
      tb.typing.textContent = t("typing"); if (tb.input) { tb.input.placeholder = t("placeholder"); tb.input.setAttribute("aria-label", t("placeholder")); }
      tb.transcript.textContent = ""; events.forEach(function (ev) { tb.transcript.appendChild(renderEvent(tb, ev)); });
    });
    if (TC.agent) $("me").textContent = TC.agent.display_name + " (" + t(TC.agent.role === "supervisor" ? "supervisor" : "agent") + ")";
  };

  TC.applyI18n();
  if (S.token) start();
})();
