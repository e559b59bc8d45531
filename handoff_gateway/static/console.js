/* Agent console — no build step. Everything users and agents write is shown with textContent. */
(function () {
  "use strict";
  var I18N = {
    zh: { title: "客服工作台", name: "账号", password: "密码", signin: "登录", presence: "状态", online: "在线", away: "离开", offline: "离线",
          logout: "退出", queue: "排队", empty: "接入一个会话开始工作。", overview: "主管视图", accept: "接入", decline: "拒绝", take: "接入",
          offer: "新会话分配给您", send: "发送", note: "内部备注", transfer: "转接", resolve: "结束会话", handback: "交还机器人",
          canned: "知识库快捷回复", search: "搜索", reconnecting: "连接中断，正在重连…", context: "上下文", intent: "意图", severity: "严重程度",
          reason: "转人工原因", channel: "渠道", language: "语言", customer: "客户", entities: "实体", articles: "已推送文章", tickets: "历史工单", ticket: "工单", openTickets: "未结工单", verified: "已验证", anonymous: "匿名访客", undelivered: "消息未送达", openFailed: "打开失败", conversations: "历史会话",
          user: "用户", bot: "机器人", agent: "客服", system: "系统", waiting: "等待", due: "首响剩余", taken: "已被其他客服接入",
          agents: "客服", breaches: "SLA 超时", alert: "SLA 即将超时：", placeholder: "输入回复…", notePlaceholder: "仅客服可见的备注…", to: "转给（客服名或组 zh/en）" },
    en: { title: "Agent console", name: "Name", password: "Password", signin: "Sign in", presence: "Status", online: "Online", away: "Away", offline: "Offline",
          logout: "Sign out", queue: "Queue", empty: "Take a conversation to start.", overview: "Supervisor view", accept: "Accept", decline: "Decline", take: "Take",
          offer: "New conversation for you", send: "Send", note: "Internal note", transfer: "Transfer", resolve: "Resolve", handback: "Hand back to bot",
          canned: "Canned responses (KB)", search: "Search", reconnecting: "Connection lost, reconnecting…", context: "Context", intent: "Intent", severity: "Severity",
          reason: "Handoff reason", channel: "Channel", language: "Language", customer: "Customer", entities: "Entities", articles: "Articles shown", tickets: "Earlier tickets", ticket: "Ticket", openTickets: "Open tickets", verified: "verified", anonymous: "anonymous visitor", undelivered: "Not delivered", openFailed: "could not open", conversations: "Earlier conversations",
          user: "User", bot: "Bot", agent: "Agent", system: "System", waiting: "waiting", due: "first response in", taken: "taken by another agent",
          agents: "Agents", breaches: "SLA breaches", alert: "SLA about to be breached: ", placeholder: "Type a reply…", notePlaceholder: "Note only agents see…", to: "Transfer to (agent name or group zh/en)" }
  };
  var lang = (localStorage.getItem("console-lang") || (navigator.language || "zh").slice(0, 2)) === "en" ? "en" : "zh";
  function t(k) { return I18N[lang][k] || k; }
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = String(text); return e; }
  function btn(label, cls, onClick) { var b = el("button", cls, label); b.type = "button"; b.addEventListener("click", onClick); return b; }
  function applyI18n() { document.documentElement.lang = lang === "zh" ? "zh-CN" : "en"; document.querySelectorAll("[data-i18n]").forEach(function (e) { e.textContent = t(e.dataset.i18n); }); $("lang-toggle").textContent = lang === "zh" ? "English" : "中文"; }

  var S = { token: sessionStorage.getItem("agent-token"), agent: null, ws: null, retry: 0, queue: [], tabs: {}, active: null };

  function api(method, path, body) {
    return fetch(path, { method: method, headers: { "Content-Type": "application/json", Authorization: "Bearer " + S.token }, body: body ? JSON.stringify(body) : undefined })
      .then(function (r) { return r.json().then(function (j) { if (!r.ok) { var e = new Error(j.detail || r.status); e.status = r.status; throw e; } return j; }); });
  }

  $("lang-toggle").addEventListener("click", function () { lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("console-lang", lang); applyI18n(); });
  $("login-form").addEventListener("submit", function (e) {
    e.preventDefault();
    fetch("/api/v1/agents/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name: $("login-name").value, password: $("login-password").value }) })
      .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.detail); return j; }); })
      .then(function (j) { S.token = j.token; S.agent = j.agent; sessionStorage.setItem("agent-token", j.token); start(); })
      .catch(function (err) { $("login-error").textContent = err.message; });
  });
  $("logout").addEventListener("click", function () {
    // End the session on the server too (its consoles close everywhere), then forget it here.
    var done = function () { sessionStorage.removeItem("agent-token"); location.reload(); };
    fetch("/api/v1/agents/logout", { method: "POST", headers: { Authorization: "Bearer " + S.token } }).then(done, done);
  });
  $("presence").addEventListener("change", function () { send({ type: "presence", status: $("presence").value }); });
  $("supervisor-toggle").addEventListener("click", function () { var o = $("overview"); o.hidden = !o.hidden; if (!o.hidden) loadOverview(); });

  function send(obj) { if (S.ws && S.ws.readyState === 1) S.ws.send(JSON.stringify(obj)); }

  function start() {
    $("login").hidden = true; $("desk").hidden = false; connect();
  }

  function connect() {
    var ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws/agent"); S.ws = ws;
    ws.onopen = function () { ws.send(JSON.stringify({ type: "hello", token: S.token })); };
    ws.onmessage = function (e) { var f = JSON.parse(e.data); handle(f); };
    ws.onclose = function (e) {
      if (S.ws !== ws) return;
      if (e.code === 4401) { sessionStorage.removeItem("agent-token"); $("desk").hidden = true; $("login").hidden = false; $("login-error").textContent = "session expired"; return; }
      $("conn").textContent = t("reconnecting"); setTimeout(connect, Math.min(10000, 500 * Math.pow(2, S.retry++)));
    };
  }

  function handle(f) {
    switch (f.type) {
      case "hello":
        S.agent = f.agent; S.retry = 0; $("conn").textContent = ""; $("me").textContent = f.agent.display_name + " (" + f.agent.role + ")";
        $("presence").value = "online"; $("supervisor-toggle").hidden = f.agent.role !== "supervisor"; break;
      case "queue": S.queue = f.items; renderQueue(); break;
      case "offer": renderOffer(f); break;
      case "alert": showAlert(f); break;
      case "accept": openTab(f.conversation_id); break;
      case "resolve": case "handback": case "transfer": closeTab(f.conversation_id); break;
      case "error": showError(f); break;
      case "heartbeat": case "presence": case "decline": break;
      default: if (f.conversation_id) addEvent(f.conversation_id, f);
    }
  }

  function showAlert(f) { var a = el("p", "error", t("alert") + f.conversation_id + " (" + Math.max(0, f.remaining_seconds) + " s)"); $("alerts").appendChild(a); setTimeout(function () { a.remove(); }, 15000); }
  function showError(f) {
    var a = el("p", "error", (f.code === "409" ? t("taken") + " — " : "") + f.message); $("alerts").appendChild(a); setTimeout(function () { a.remove(); }, 8000);
    if (f.request === "accept") { var o = document.querySelector('[data-offer="' + CSS.escape(f.conversation_id) + '"]'); if (o) o.remove(); }
  }

  function countdown(sla) {
    if (!sla) return "";
    var left = Math.round((Date.parse(sla.first_response_due) - Date.now()) / 1000);
    var sign = left < 0 ? "-" : ""; left = Math.abs(left);
    return sign + Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
  }
  function renderQueue() {
    var list = $("queue-list"); list.textContent = "";
    S.queue.forEach(function (item) {
      var li = el("li"); li.dataset.conversation = item.conversation_id;
      li.appendChild(el("span", "badge " + item.severity, item.severity));
      if (item.ticket_id) li.appendChild(el("span", "badge ticket", t("ticket") + " " + item.ticket_id));
      var sla = el("span", "sla", t("due") + " " + countdown(item.sla)); sla.dataset.due = item.sla ? item.sla.first_response_due : "";
      li.appendChild(sla);
      li.appendChild(el("div", null, (item.intent || "") + " · " + (item.reason || "") + " · " + item.group + (item.escalated ? " · ⚠" : "")));
      li.appendChild(btn(t("take"), "secondary", function () { send({ type: "accept", conversation_id: item.conversation_id }); }));
      list.appendChild(li);
    });
    document.querySelectorAll("[data-offer]").forEach(function (o) { if (!S.queue.some(function (q) { return q.conversation_id === o.dataset.offer; })) o.remove(); });
  }
  setInterval(function () {
    document.querySelectorAll(".sla[data-due]").forEach(function (s) { if (!s.dataset.due) return; var left = Date.parse(s.dataset.due) - Date.now(); s.textContent = t("due") + " " + countdown({ first_response_due: s.dataset.due }); s.classList.toggle("late", left < 60000); });
  }, 1000);

  function renderOffer(f) {
    if (document.querySelector('[data-offer="' + CSS.escape(f.conversation_id) + '"]')) return;
    var box = el("div", "offer"); box.dataset.offer = f.conversation_id; box.setAttribute("role", "alertdialog"); box.setAttribute("aria-label", t("offer"));
    box.appendChild(el("strong", null, t("offer")));
    box.appendChild(el("div", null, (f.severity || "") + " · " + (f.intent || "") + " · " + (f.reason || "") + " · " + (f.channel || "")));
    box.appendChild(btn(t("accept"), null, function () { send({ type: "accept", conversation_id: f.conversation_id }); box.remove(); }));
    box.appendChild(btn(t("decline"), "secondary", function () { send({ type: "decline", conversation_id: f.conversation_id }); box.remove(); }));
    $("offers").appendChild(box);
    setTimeout(function () { box.remove(); }, (f.expires_in || 30) * 1000);
  }

  function openTab(cid) {
    if (S.tabs[cid]) { select(cid); return; }
    var tab = btn(cid.slice(0, 8), null, function () { select(cid); }); tab.setAttribute("role", "tab"); $("tabs").appendChild(tab);
    var pane = el("div", "pane"); pane.setAttribute("role", "tabpanel"); pane.dataset.conversation = cid;
    var left = el("div"), transcript = el("div", "transcript"); transcript.setAttribute("aria-label", "transcript");
    var compose = el("div", "compose"), input = el("textarea"); input.placeholder = t("placeholder"); input.setAttribute("aria-label", t("placeholder"));
    var row = el("div", "row");
    function sendReply() { var v = input.value.trim(); if (!v) return; send({ type: "message", conversation_id: cid, text: v, client_msg_id: (crypto.randomUUID ? crypto.randomUUID() : String(Date.now())) }); input.value = ""; }
    input.addEventListener("keydown", function (e) { if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendReply(); } });
    row.appendChild(btn(t("send"), null, sendReply));
    row.appendChild(btn(t("note"), "secondary", function () { var v = input.value.trim(); if (v) { send({ type: "note", conversation_id: cid, text: v }); input.value = ""; } }));
    row.appendChild(btn(t("transfer"), "secondary", function () { var to = prompt(t("to")); if (to == null) return; var group = to === "zh" || to === "en"; send({ type: "transfer", conversation_id: cid, to_group: group ? to : null, to_agent: group ? null : to, note: input.value }); }));
    row.appendChild(btn(t("resolve"), "secondary", function () { send({ type: "resolve", conversation_id: cid }); }));
    row.appendChild(btn(t("handback"), "secondary", function () { send({ type: "handback", conversation_id: cid }); }));
    compose.appendChild(input); compose.appendChild(row);
    left.appendChild(transcript); left.appendChild(compose);
    var ctx = el("div", "context"); ctx.setAttribute("aria-label", t("context"));
    pane.appendChild(left); pane.appendChild(ctx); $("panes").appendChild(pane);
    S.tabs[cid] = { tab: tab, pane: pane, transcript: transcript, ctx: ctx, seen: {} };
    $("empty").hidden = true; select(cid); loadContext(cid);
  }
  function select(cid) { Object.keys(S.tabs).forEach(function (k) { var on = k === cid; S.tabs[k].pane.hidden = !on; S.tabs[k].tab.setAttribute("aria-selected", on ? "true" : "false"); }); S.active = cid; }
  function closeTab(cid) { var tb = S.tabs[cid]; if (!tb) return; tb.tab.remove(); tb.pane.remove(); delete S.tabs[cid]; var rest = Object.keys(S.tabs); if (rest.length) select(rest[0]); else $("empty").hidden = false; }

  function addEvent(cid, ev) {
    if (!S.tabs[cid]) openTab(cid);
    var tb = S.tabs[cid];
    if (ev.seq != null) { if (tb.seen[ev.seq]) return; tb.seen[ev.seq] = true; }
    var kind = ev.type === "note" ? "note" : ev.type === "message" ? (ev.role || "system") : "system";
    var text = ev.type === "message" || ev.type === "note" ? ev.text : "[" + ev.type + "]" + (ev.reason ? " " + ev.reason : "") + (ev.score ? " ★" + ev.score : "");
    var box = el("div", "ev " + kind); box.dataset.seq = ev.seq;
    box.appendChild(el("span", "who", (ev.type === "note" ? t("note") : t(ev.role || "system")) + (ev.agent_name ? " · " + ev.agent_name : "")));
    if (ev.type === "attachment") { kind = "user"; box.className = "ev user"; box.appendChild(attachmentLink(cid, ev)); }
    else if (ev.type === "delivery_failed") { box.appendChild(document.createTextNode(t("undelivered") + " (" + (ev.channel || "") + "): " + (ev.error || ""))); }
    else box.appendChild(document.createTextNode(text || ""));
    tb.transcript.appendChild(box); tb.transcript.scrollTop = tb.transcript.scrollHeight;
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

  function loadContext(cid) {
    api("GET", "/api/v1/conversations/" + encodeURIComponent(cid) + "/context").then(function (c) {
      var tb = S.tabs[cid]; if (!tb) return; tb.ctx.textContent = "";
      var dl = el("dl");
      [["intent", (c.intent.name || "") + " (" + (c.intent.confidence || 0) + ")"], ["severity", c.severity], ["reason", c.handoff.reason],
       ["channel", [c.channel].concat(c.platform ? [c.platform.app, c.platform.corp_id, c.platform.user_id] : []).filter(Boolean).join(" · ")], ["language", c.language], ["customer", c.customer.verified ? [t("verified"), c.customer.name, c.customer.user, c.customer.tenant, c.customer.email, c.customer.phone, c.customer.vip_tier ? "VIP " + c.customer.vip_tier : ""].filter(Boolean).join(" · ") : t("anonymous")],
       ["entities", c.entities.map(function (e) { return e.entity + "=" + (typeof e.value === "object" ? JSON.stringify(e.value) : e.value); }).join(", ")],
       ["articles", c.kb_articles_shown.join(", ")], ["tickets", c.earlier_tickets.join(", ")], ["conversations", (c.customer.earlier_conversations || []).map(function (x) { return x.conversation_id || x; }).join(", ")]].forEach(function (p) { dl.appendChild(el("dt", null, t(p[0]))); dl.appendChild(el("dd", null, p[1] || "—")); });
      tb.ctx.appendChild(dl);
      var search = el("input"); search.placeholder = t("canned"); search.setAttribute("aria-label", t("canned"));
      var results = el("ul", "canned");
      search.addEventListener("keydown", function (e) {
        if (e.key !== "Enter") return;
        api("GET", "/api/v1/kb/search/canned?q=" + encodeURIComponent(search.value)).then(function (r) {
          results.textContent = "";
          r.items.forEach(function (h) { var li = el("li"); li.appendChild(btn(h.title, "link", function () { var ta = tb.pane.querySelector("textarea"); ta.value = h.steps.map(function (s, i) { return (i + 1) + ". " + s.replace(/\*\*/g, ""); }).join("\n"); ta.focus(); })); results.appendChild(li); });
        });
      });
      tb.ctx.appendChild(el("h3", null, t("canned"))); tb.ctx.appendChild(search); tb.ctx.appendChild(results);
      c.transcript.forEach(function (ev) { addEvent(cid, ev); });
    });
  }

  function loadOverview() {
    api("GET", "/api/v1/supervisor/overview").then(function (o) {
      var body = $("overview-body"); body.textContent = "";
      var table = el("table"), head = el("tr");
      ["name", "presence", "on duty", "open", "capacity"].forEach(function (h) { head.appendChild(el("th", null, h)); }); table.appendChild(head);
      o.agents.forEach(function (a) { var tr = el("tr"); [a.display_name, a.presence, a.on_duty ? "✓" : "", a.open.length, a.capacity].forEach(function (v) { tr.appendChild(el("td", null, v)); }); table.appendChild(tr); });
      body.appendChild(el("h3", null, t("agents"))); body.appendChild(table);
      body.appendChild(el("h3", null, t("queue"))); Object.keys(o.queues).forEach(function (g) { body.appendChild(el("p", null, g + ": " + o.queues[g].length)); });
      body.appendChild(el("h3", null, t("openTickets"))); var tl = el("ul");
      (o.tickets || []).forEach(function (k) { tl.appendChild(el("li", null, k.ticket_id + " · " + k.severity + " · " + k.status + " · " + t("due") + " " + (k.sla ? k.sla.first_response_due : ""))); });
      body.appendChild(tl);
      body.appendChild(el("h3", null, t("breaches"))); var ul = el("ul"); o.breaches.forEach(function (b) { ul.appendChild(el("li", null, b.conversation_id + " · " + b.kind)); }); body.appendChild(ul);
    });
  }

  applyI18n();
  if (S.token) start();
})();
