/* triagebot chat widget — no build step. Embed with:
 *   <script>window.TriagebotConfig = { server: "", lang: "auto" };</script>
 *   <script src="/static/widget.js" defer></script>
 * Signed-in users: add identityToken (an HS256 JWT the host's backend signs with TRIAGE_IDENTITY_SECRET) and
 * getIdentityToken (a callback returning a fresh token, or a Promise of one), called when the token has expired.
 * Everything users and agents write is rendered with textContent, never as HTML.
 */
(function () {
  "use strict";
  var cfg = Object.assign({ server: "", lang: "auto", open: false, storageKey: "triagebot", identityToken: null, getIdentityToken: null }, window.TriagebotConfig || {});
  var UI = {
    zh: { title: "报销与发票助手", placeholder: "描述您遇到的问题…", send: "发送", open: "打开客服对话", close: "关闭",
          reconnecting: "连接中断，正在重新连接…", connecting: "正在连接…", queued: "已转人工客服：前面还有 {ahead} 位，预计等待约 {wait} 分钟",
          assigned: "客服 {agent} 已接入", resolved: "对话已结束", you: "我", bot: "助手", agent: "客服", system: "系统",
          typing: "对方正在输入…", csat: "请为本次服务打分：", thanks: "感谢您的评价！", article: "查看文章", error: "发送失败：",
          identity: "登录状态已失效，请刷新页面后重试" },
    en: { title: "Expense & e-invoice help", placeholder: "Describe your problem…", send: "Send", open: "Open support chat", close: "Close",
          reconnecting: "Connection lost, reconnecting…", connecting: "Connecting…", queued: "Waiting for an agent: {ahead} ahead of you, about {wait} min",
          assigned: "{agent} has joined", resolved: "Conversation closed", you: "You", bot: "Assistant", agent: "Agent", system: "System",
          typing: "Typing…", csat: "How did we do?", thanks: "Thanks for your rating!", article: "Read the article", error: "Not sent: ",
          identity: "Your sign-in has expired: please reload the page" }
  };
  function pickLang() {
    if (cfg.lang === "zh" || cfg.lang === "en") return cfg.lang;
    var page = (document.documentElement.lang || navigator.language || "zh").toLowerCase();
    return page.indexOf("zh") === 0 ? "zh" : "en";
  }
  var lang = pickLang(), t = UI[lang];
  function fmt(s, p) { return s.replace(/\{(\w+)\}/g, function (_, k) { return p[k] == null ? "" : String(p[k]); }); }
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; }

  var css = el("link"); css.rel = "stylesheet"; css.href = cfg.server + "/static/widget.css"; document.head.appendChild(css);
  var root = el("div", "tb-root"); root.setAttribute("data-testid", "triagebot");
  var launcher = el("button", "tb-launcher", "💬"); launcher.type = "button"; launcher.setAttribute("aria-label", t.open);
  var panel = el("section", "tb-panel"); panel.setAttribute("role", "dialog"); panel.setAttribute("aria-label", t.title);
  var header = el("div", "tb-header"); header.appendChild(el("h2", null, t.title));
  var closeBtn = el("button", "tb-close", "×"); closeBtn.type = "button"; closeBtn.setAttribute("aria-label", t.close); header.appendChild(closeBtn);
  var status = el("div", "tb-status"); status.setAttribute("role", "status"); status.setAttribute("aria-live", "polite");
  var log = el("div", "tb-log"); log.setAttribute("aria-live", "polite"); log.setAttribute("role", "log");
  var typing = el("div", "tb-typing", t.typing);
  log.appendChild(typing);  // messages are inserted before it, so it stays last
  var form = el("form", "tb-form");
  var input = el("textarea", "tb-input"); input.placeholder = t.placeholder; input.setAttribute("aria-label", t.placeholder); input.rows = 1;
  var sendBtn = el("button", "tb-send", t.send); sendBtn.type = "submit";
  form.appendChild(input); form.appendChild(sendBtn);
  panel.appendChild(header); panel.appendChild(status); panel.appendChild(log); panel.appendChild(form);
  root.appendChild(launcher); root.appendChild(panel);

  // sub: the verified user the conversation belongs to (null: anonymous), so a page signed in as someone
  // else never resumes it.
  var state = { conversationId: null, token: null, lastSeq: 0, outbox: [], ws: null, retry: 0, convState: "bot", shown: {}, sub: null, identityFailed: false };
  function save() {
    try { localStorage.setItem(cfg.storageKey, JSON.stringify({ conversationId: state.conversationId, token: state.token, lastSeq: state.lastSeq, outbox: state.outbox, sub: state.sub })); } catch (e) { /* private mode */ }
  }
  function load(sub) {
    try {
      var s = JSON.parse(localStorage.getItem(cfg.storageKey) || "null");
      if (!s || !s.conversationId) return;
      if ((s.sub || null) !== sub) { localStorage.removeItem(cfg.storageKey); return; }  // another user's conversation
      state.conversationId = s.conversationId; state.token = s.token; state.outbox = s.outbox || []; state.sub = s.sub || null;
    } catch (e) { /* ignore */ }
  }

  // The identity token is verified by the server; the widget only reads its `sub` (no verification needed)
  // to tell whose conversation a stored one is.
  function tokenSub(jwt) {
    try {
      var part = String(jwt).split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      var bin = atob(part + "===".slice((part.length + 3) % 4));
      var bytes = new Uint8Array(bin.length); for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      var sub = JSON.parse(new TextDecoder().decode(bytes)).sub;
      return sub == null ? null : String(sub);
    } catch (e) { return null; }
  }
  function freshToken() {
    if (typeof cfg.getIdentityToken !== "function") return Promise.resolve(null);
    return Promise.resolve().then(function () { return cfg.getIdentityToken(); })
      .then(function (tok) { if (tok) cfg.identityToken = tok; return tok || null; }, function () { return null; });
  }
  // The token the page has now: the configured one, else one from the host's callback, else none (anonymous).
  function currentToken() { return cfg.identityToken ? Promise.resolve(cfg.identityToken) : freshToken(); }
  function setStatus(text, kind) { status.textContent = text || ""; status.className = "tb-status" + (text ? " tb-visible" : "") + (kind ? " tb-" + kind : ""); }
  function scroll() { log.scrollTop = log.scrollHeight; }
  function uuid() { return (crypto.randomUUID ? crypto.randomUUID() : Date.now().toString(36) + Math.random().toString(36).slice(2)); }

  // Events are shown in sequence order, whatever order they arrive in (a replay after a reconnect can
  // bring an earlier agent message after a message the user has just typed).
  function place(box, seq) {
    if (seq == null) { log.insertBefore(box, typing); return; }
    box.setAttribute("data-seq", seq);
    var later = Array.prototype.find.call(log.querySelectorAll("[data-seq]"), function (e) { return e !== box && Number(e.getAttribute("data-seq")) > seq; });
    var pending = log.querySelector(".tb-pending");
    log.insertBefore(box, later || pending || typing);
  }
  function bubble(role, text, seq, who) {
    var box = el("div", "tb-msg tb-" + role);
    if (role !== "user" && role !== "system") box.appendChild(el("span", "tb-who", who || t[role] || role));
    box.appendChild(document.createTextNode(text));
    place(box, seq);
    return box;
  }
  function addButtons(box, buttons) {
    var row = el("div", "tb-buttons");
    buttons.forEach(function (b) {
      var btn = el("button", null, b.title); btn.type = "button";
      btn.addEventListener("click", function () {
        Array.prototype.forEach.call(row.querySelectorAll("button"), function (x) { x.disabled = true; });
        send(b.payload, b.title);
      });
      row.appendChild(btn);
    });
    box.appendChild(row);
  }
  function csat() {
    if (log.querySelector(".tb-csat")) return;
    var box = el("div", "tb-csat", t.csat), row = el("div");
    [1, 2, 3, 4, 5].forEach(function (n) {
      var b = el("button", null, n + "★"); b.type = "button"; b.setAttribute("aria-label", n + " / 5");
      b.addEventListener("click", function () {
        wsSend({ type: "csat", score: n }); box.textContent = t.thanks;
      });
      row.appendChild(b);
    });
    box.appendChild(row); log.insertBefore(box, typing); scroll();
  }

  function render(ev) {
    if (ev.seq != null) { if (state.shown[ev.seq]) return; state.shown[ev.seq] = true; if (ev.seq > state.lastSeq) { state.lastSeq = ev.seq; save(); } }
    if (ev.type === "message") {
      if (ev.role === "user") {
        var pending = ev.client_msg_id && log.querySelector('[data-client-msg-id="' + CSS.escape(ev.client_msg_id) + '"]');
        state.outbox = state.outbox.filter(function (m) { return m.client_msg_id !== ev.client_msg_id; }); save();
        if (ev.role === "user" && state.convState !== "bot") typing.classList.remove("tb-visible");
        if (pending) { pending.classList.remove("tb-pending"); place(pending, ev.seq); return; }
        bubble("user", ev.display || ev.text, ev.seq); scroll(); return;
      }
      var role = ev.role === "agent" ? "agent" : ev.role === "system" ? "system" : "bot";
      var box = bubble(role, ev.text, ev.seq, role === "agent" && ev.agent_name ? ev.agent_name : null);
      if (ev.link && /^\/kb\/[\w-]+$/.test(ev.link)) { var a = el("a", "tb-link", t.article); a.href = cfg.server + ev.link; a.target = "_blank"; a.rel = "noopener"; box.appendChild(a); }
      if (ev.buttons && ev.buttons.length) addButtons(box, ev.buttons);
      typing.classList.remove("tb-visible"); scroll();
    } else if (ev.type === "handoff") {
      state.convState = "queued";
      if (ev.position) setStatus(fmt(t.queued, { ahead: ev.position - 1, wait: Math.max(1, Math.round((ev.eta_seconds || 0) / 60)) }), "queue");
    } else if (ev.type === "queue") {
      setStatus(fmt(t.queued, { ahead: ev.position - 1, wait: Math.max(1, Math.round((ev.eta_seconds || 0) / 60)) }), "queue");
    } else if (ev.type === "assigned") {
      state.convState = "assigned"; setStatus(fmt(t.assigned, { agent: ev.agent_name || ev.agent || "" }), "queue");
    } else if (ev.type === "resolved") {
      state.convState = "resolved"; setStatus(t.resolved, "queue");
    } else if (ev.type === "csat_request") {
      csat();
    } else if (ev.type === "typing") {
      typing.classList.add("tb-visible"); clearTimeout(render.typingTimer);
      render.typingTimer = setTimeout(function () { typing.classList.remove("tb-visible"); }, 4000);
    } else if (ev.type === "error") {
      if (ev.code === "unavailable") setStatus(t.reconnecting);
      else if (ev.client_msg_id) {
        var failed = log.querySelector('[data-client-msg-id="' + CSS.escape(ev.client_msg_id) + '"]');
        if (failed && !ev.retryable) { failed.classList.remove("tb-pending"); failed.appendChild(el("span", "tb-who", t.error + ev.message)); }
      }
    }
  }

  function wsSend(obj) { if (state.ws && state.ws.readyState === 1) { state.ws.send(JSON.stringify(obj)); return true; } return false; }
  function flush() { state.outbox.forEach(function (m) { wsSend({ type: "message", text: m.text, client_msg_id: m.client_msg_id }); }); }

  function send(text, display) {
    text = (text || "").trim(); if (!text) return;
    var m = { text: text, client_msg_id: uuid() };
    state.outbox.push(m); save();
    var box = bubble("user", display || text); box.classList.add("tb-pending"); box.setAttribute("data-client-msg-id", m.client_msg_id);
    if (state.convState === "bot") typing.classList.add("tb-visible");  // the bot is working on it
    scroll();
    ensureConversation().then(function () { wsSend({ type: "message", text: m.text, client_msg_id: m.client_msg_id }); }, function () { /* shown in the status line */ });
  }

  function createConversation(identityToken) {
    var body = { channel: "web" }; if (identityToken) body.identity_token = identityToken;
    return fetch(cfg.server + "/api/v1/conversations", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then(function (r) { return r.json().catch(function () { return {}; }).then(function (j) { return { status: r.status, ok: r.ok, body: j }; }); });
  }
  function IdentityRefused() { this.message = "identity token refused"; }

  function ensureConversation() {
    if (state.conversationId) { connect(); return Promise.resolve(); }
    if (state.identityFailed) return Promise.reject(new IdentityRefused());
    if (ensureConversation.pending) return ensureConversation.pending;
    var sent = null;
    ensureConversation.pending = currentToken()
      .then(function (tok) { sent = tok; return createConversation(tok); })
      .then(function (res) {
        // An expired or invalid identity token: ask the host for a fresh one, once.
        if (res.status !== 401 || !sent) return res;
        return freshToken().then(function (tok) { if (!tok || tok === sent) return res; sent = tok; return createConversation(tok); });
      })
      .then(function (res) {
        if (res.status === 401) throw new IdentityRefused();
        if (!res.ok) throw new Error("HTTP " + res.status);
        state.conversationId = res.body.conversation_id; state.token = res.body.token; state.lastSeq = 0;
        state.sub = sent ? tokenSub(sent) : null; save(); connect();
      })
      .catch(function (err) {
        ensureConversation.pending = null;
        if (err instanceof IdentityRefused) {
          // Never fall back to an anonymous conversation behind a signed-in user's back.
          state.identityFailed = true; setStatus(t.identity, "error");
          Array.prototype.forEach.call(log.querySelectorAll(".tb-pending"), function (b) { b.classList.remove("tb-pending"); b.classList.add("tb-failed"); });
          throw err;
        }
        setStatus(t.reconnecting); setTimeout(ensureConversation, 2000);
      });
    return ensureConversation.pending;
  }

  function connect() {
    if (state.ws && state.ws.readyState <= 1) return;
    var base = cfg.server || location.origin;
    var url = base.replace(/^http/, "ws") + "/ws/chat";
    var ws = new WebSocket(url); state.ws = ws;
    var beat;
    ws.onopen = function () { ws.send(JSON.stringify({ type: "hello", conversation_id: state.conversationId, token: state.token, last_seq: state.lastSeq })); };
    ws.onmessage = function (e) {
      var ev; try { ev = JSON.parse(e.data); } catch (x) { return; }
      clearTimeout(beat); beat = setTimeout(function () { ws.close(); }, 45000);
      if (ev.type === "hello") { state.retry = 0; if (state.convState !== "queued" && state.convState !== "assigned") setStatus(""); flush(); return; }
      if (ev.type === "heartbeat") { if (status.textContent === t.reconnecting) setStatus(""); return; }
      render(ev);
    };
    ws.onclose = function (e) {
      clearTimeout(beat);
      if (state.ws !== ws) return;
      if (e.code === 4401 || e.code === 4404) { state.conversationId = null; state.token = null; save(); return; }
      setStatus(t.reconnecting);
      var delay = Math.min(10000, 500 * Math.pow(2, state.retry++));
      setTimeout(connect, delay);
    };
  }

  function openPanel() { root.classList.add("tb-open"); input.focus(); if (state.conversationId) connect(); }
  launcher.addEventListener("click", openPanel);
  closeBtn.addEventListener("click", function () { root.classList.remove("tb-open"); launcher.focus(); });
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") closeBtn.click(); });
  form.addEventListener("submit", function (e) { e.preventDefault(); var v = input.value; input.value = ""; send(v); });
  input.addEventListener("keydown", function (e) { if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); } });
  var lastTyping = 0;
  input.addEventListener("input", function () { var now = Date.now(); if (now - lastTyping > 3000) { lastTyping = now; wsSend({ type: "typing" }); } });

  function mount() {
    document.body.appendChild(root);
    currentToken().then(function (tok) {
      load(tok ? tokenSub(tok) : null);
      if (cfg.open) openPanel(); else if (state.conversationId) connect();
    });
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
  window.Triagebot = { open: openPanel, send: send, _state: state, _socket: function () { return state.ws; } };
})();
