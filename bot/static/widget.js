/* triagebot chat widget — no build step. Embed with:
 *   <script>window.TriagebotConfig = { server: "", lang: "auto" };</script>
 *   <script src="/static/widget.js" defer></script>
 * Signed-in users: add identityToken (an HS256 JWT the host's backend signs with TRIAGE_IDENTITY_SECRET) and
 * getIdentityToken (a callback returning a fresh token, or a Promise of one), called when the token has expired.
 * Labels follow the user, not the host page: lang "auto" starts from the browser's language, then follows the
 * script the user writes in and the one the server answers in (each bot reply names it). lang "zh", "zh-Hant"
 * or "en" only sets where it starts.
 * Everything users and agents write is rendered with textContent, never as HTML; links are made only for
 * http(s) addresses and this server's own paths.
 */
(function () {
  "use strict";
  var cfg = Object.assign({ server: "", lang: "auto", open: false, storageKey: "triagebot", identityToken: null, getIdentityToken: null }, window.TriagebotConfig || {});
  var UI = {
    Hans: { title: "报销与发票助手", placeholder: "描述您遇到的问题…", send: "发送", open: "打开客服对话", close: "关闭",
          reconnecting: "连接中断，正在重新连接…", queued: "已转人工客服：前面还有 {ahead} 位，预计等待约 {wait} 分钟",
          assigned: "客服 {agent} 已接入", resolved: "对话已结束", you: "我", bot: "助手", agent: "客服", system: "系统",
          typing: "对方正在输入…", csat: "请为本次服务打分：", comment: "还有什么想告诉我们的？（可选）", submit: "提交评价",
          thanks: "感谢您的评价！", rated: "您已评价过本次对话", article: "查看完整文章", error: "发送失败：",
          identity: "登录状态已失效，请刷新页面后重试", welcome: "您好！我是报销与发票助手。请描述遇到的问题，或选择一个常见问题：",
          topics: ["发票查验失败", "收不到验证码", "报销单提交失败", "导出失败", "转人工"],
          newChat: "新对话", attach: "添加附件", unread: "{n} 条新消息", uploadFailed: "上传失败：", file: "附件",
          download: "下载",
          tickets: "我的工单", noTickets: "还没有工单", back: "返回对话", due: "首次回复截止 {due}",
          ticketStatus: { open: "待处理", assigned: "处理中", resolved: "已解决", cancelled: "已取消" },
          tiers: { urgent: "紧急", important: "重要", normal: "一般" },
          contactAsk: "现在无人值班。留下邮箱或手机号，工单有回复时我们通知您：", contactPlaceholder: "邮箱或手机号",
          contactSave: "提交", contactDone: "有回复时我们会通过 {contact} 通知您", contactBad: "请输入有效的邮箱或手机号",
          delivered: "已送达", read: "已读" },
    Hant: { title: "報銷與發票助手", placeholder: "描述您遇到的問題…", send: "傳送", open: "開啟客服對話", close: "關閉",
          reconnecting: "連線中斷，正在重新連線…", queued: "已轉人工客服：前面還有 {ahead} 位，預計等待約 {wait} 分鐘",
          assigned: "客服 {agent} 已接入", resolved: "對話已結束", you: "我", bot: "助手", agent: "客服", system: "系統",
          typing: "對方正在輸入…", csat: "請為本次服務評分：", comment: "還有什麼想告訴我們的？（選填）", submit: "送出評價",
          thanks: "感謝您的評價！", rated: "您已評價過本次對話", article: "查看完整文章", error: "傳送失敗：",
          identity: "登入狀態已失效，請重新整理頁面後重試", welcome: "您好！我是報銷與發票助手。請描述遇到的問題，或選擇一個常見問題：",
          topics: ["發票查驗失敗", "收不到驗證碼", "報銷單提交失敗", "匯出失敗", "轉人工"],
          newChat: "新對話", attach: "新增附件", unread: "{n} 則新訊息", uploadFailed: "上傳失敗：", file: "附件",
          download: "下載",
          tickets: "我的工單", noTickets: "還沒有工單", back: "返回對話", due: "首次回覆截止 {due}",
          ticketStatus: { open: "待處理", assigned: "處理中", resolved: "已解決", cancelled: "已取消" },
          tiers: { urgent: "緊急", important: "重要", normal: "一般" },
          contactAsk: "現在無人值班。留下電郵或手機號碼，工單有回覆時我們通知您：", contactPlaceholder: "電郵或手機號碼",
          contactSave: "送出", contactDone: "有回覆時我們會透過 {contact} 通知您", contactBad: "請輸入有效的電郵或手機號碼",
          delivered: "已送達", read: "已讀" },
    Latn: { title: "Expense & e-invoice help", placeholder: "Describe your problem…", send: "Send", open: "Open support chat", close: "Close",
          reconnecting: "Connection lost, reconnecting…", queued: "Waiting for an agent: {ahead} ahead of you, about {wait} min",
          assigned: "{agent} has joined", resolved: "Conversation closed", you: "You", bot: "Assistant", agent: "Agent", system: "System",
          typing: "Typing…", csat: "How did we do?", comment: "Anything else you'd like to tell us? (optional)", submit: "Send rating",
          thanks: "Thanks for your rating!", rated: "You have rated this conversation", article: "Read the full article", error: "Not sent: ",
          identity: "Your sign-in has expired: please reload the page", welcome: "Hi! I'm the expense and e-invoice assistant. Describe your problem, or pick a common one:",
          topics: ["Invoice verification failed", "SMS code not received", "Expense report won't submit", "Export failed", "Talk to an agent"],
          newChat: "New conversation", attach: "Attach a file", unread: "{n} new messages", uploadFailed: "Upload failed: ", file: "Attachment",
          download: "Download",
          tickets: "My tickets", noTickets: "No tickets yet", back: "Back to the chat", due: "First response by {due}",
          ticketStatus: { open: "Open", assigned: "In progress", resolved: "Resolved", cancelled: "Cancelled" },
          tiers: { urgent: "Urgent", important: "Important", normal: "Normal" },
          contactAsk: "No agent is on duty now. Leave an e-mail or mobile number and we'll tell you when your ticket is answered:",
          contactPlaceholder: "E-mail or mobile number", contactSave: "Save", contactDone: "We'll let you know at {contact} when there's an answer",
          contactBad: "Please enter a valid e-mail address or mobile number", delivered: "Delivered", read: "Read" }
  };
  // Characters that differ between the scripts (a sample of the commonest): enough to tell a message's script.
  var SIMP = "这们个说发对时会还问题请务么为实过后见单号码钱账报销录没帮转关图开门导验证书员户两里让认识样点进应该现无与产业东车长从众优动区医华卖历压变响团国处复头夹宝审宽币师带帐归总护择换据显术权条来构标检气测浏满热状电疗确离种积称笔类级纸线组织细终经绑结给统缴网罚联脑节补观规觉订诉词试询详误读调负货购费资赔软较输辑边远连适选递逻邮钮银错键闭间队阶随难页项顺须预额风饭驳鸡黄齐";
  var TRAD = "這們個說發對時會還問題請務麼為實過後見單號碼錢賬報銷錄沒幫轉關圖開門導驗證書員戶兩裡讓認識樣點進應該現無與產業東車長從眾優動區醫華賣歷壓變響團國處復頭夾寶審寬幣師帶帳歸總護擇換據顯術權條來構標檢氣測瀏滿熱狀電療確離種積稱筆類級紙線組織細終經綁結給統繳網罰聯腦節補觀規覺訂訴詞試詢詳誤讀調負貨購費資賠軟較輸輯邊遠連適選遞邏郵鈕銀錯鍵閉間隊階隨難麵頁項順須預額風飯駁雞黃齊";
  function scriptOf(tag) {  // a BCP 47 tag or a script name -> Hans | Hant | Latn
    tag = String(tag || "").toLowerCase();
    if (tag === "latn" || tag.indexOf("en") === 0) return "Latn";
    if (tag.indexOf("hant") >= 0 || /^zh-(tw|hk|mo)/.test(tag)) return "Hant";
    if (tag.indexOf("zh") === 0 || tag === "hans") return "Hans";
    return "Latn";
  }
  function detectScript(text) {  // the script a message is written in, or null when too short to tell
    if (/^\//.test(text)) return null;  // a button's payload
    var han = text.match(/[\u3400-\u9fff]/g) || [], latin = (text.match(/[A-Za-z]{2,}/g) || []).join("").length;
    if (!han.length) return latin >= 4 ? "Latn" : null;
    if (latin > han.length * 2 && han.length < 4) return "Latn";
    var trad = 0, simp = 0;
    han.forEach(function (c) { if (TRAD.indexOf(c) >= 0) trad++; else if (SIMP.indexOf(c) >= 0) simp++; });
    if (trad > simp) return "Hant";
    if (simp > trad) return "Hans";
    return state.script === "Latn" ? "Hans" : state.script;  // the same in both (e.g. 依然不行): keep
  }
  function fmt(s, p) { return s.replace(/\{(\w+)\}/g, function (_, k) { return p[k] == null ? "" : String(p[k]); }); }
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; }
  function button(cls, text) { var b = el("button", cls, text); b.type = "button"; return b; }

  // sub: the verified user the conversation belongs to (null: anonymous), so a page signed in as someone
  // else never resumes it. script: Hans | Hant | Latn for the labels; region: the server's full script
  // (Hant-HK, Hant-TW …) for article links. helloSeq: the last event that existed when the socket opened.
  var state = { conversationId: null, token: null, lastSeq: 0, outbox: [], ws: null, retry: 0, convState: "bot", shown: {}, sub: null,
                identityFailed: false, script: "Hans", region: null, rated: false, agentName: null, helloSeq: null, unread: 0 };
  state.script = cfg.lang && cfg.lang !== "auto" ? scriptOf(cfg.lang) : scriptOf(navigator.language || "zh");
  function t() { return UI[state.script]; }

  // Every translated piece of the UI registers here, so a change of script relabels all of it.
  var labels = [];
  function label(node, key, attr) { labels.push([node, key, attr]); apply([node, key, attr]); return node; }
  function apply(entry) {
    var value = t()[entry[1]];
    if (entry[2]) entry[0].setAttribute(entry[2], value); else entry[0].textContent = value;
  }
  function setScript(full) {
    if (!full) return;
    var s = scriptOf(full);
    if (s !== "Hant" || full !== "Hant" || !/^Hant/.test(state.region || "")) state.region = full;  // keep a known region
    if (s === state.script) return;
    state.script = s; root.setAttribute("lang", s === "Latn" ? "en" : s === "Hant" ? "zh-Hant" : "zh-Hans");
    labels.forEach(apply); renderTopics(); if (state.statusKey) setStatus(state.statusKey, state.statusParams, state.statusKind);
    updateTitle();
  }

  var css = el("link"); css.rel = "stylesheet"; css.href = cfg.server + "/static/widget.css"; document.head.appendChild(css);
  var root = el("div", "tb-root"); root.setAttribute("data-testid", "triagebot");
  root.setAttribute("lang", state.script === "Latn" ? "en" : state.script === "Hant" ? "zh-Hant" : "zh-Hans");
  var launcher = label(button("tb-launcher", "💬"), "open", "aria-label");
  var badge = el("span", "tb-badge"); badge.setAttribute("aria-hidden", "true"); launcher.appendChild(badge);
  var panel = label(el("section", "tb-panel"), "title", "aria-label"); panel.setAttribute("role", "dialog"); panel.setAttribute("aria-modal", "true");
  var header = el("div", "tb-header"); header.appendChild(label(el("h2"), "title"));
  var actions = el("div", "tb-actions");
  var newBtn = label(button("tb-new", "✎"), "newChat", "aria-label"); label(newBtn, "newChat", "title");
  var closeBtn = label(button("tb-close", "×"), "close", "aria-label");
  var ticketsBtn = label(button("tb-tickets-btn", "🎫"), "tickets", "aria-label"); label(ticketsBtn, "tickets", "title");
  actions.appendChild(ticketsBtn); actions.appendChild(newBtn); actions.appendChild(closeBtn); header.appendChild(actions);
  var status = el("div", "tb-status"); status.setAttribute("role", "status"); status.setAttribute("aria-live", "polite");
  var log = el("div", "tb-log"); log.setAttribute("aria-live", "polite"); log.setAttribute("role", "log"); log.tabIndex = 0;
  var welcome = el("div", "tb-welcome"); welcome.appendChild(label(el("p"), "welcome"));
  var topics = el("div", "tb-buttons tb-topics"); welcome.appendChild(topics); log.appendChild(welcome);
  var typing = label(el("div", "tb-typing"), "typing");
  log.appendChild(typing);  // messages are inserted before it, so it stays last
  var form = el("form", "tb-form");
  var attachBtn = label(button("tb-attach", "📎"), "attach", "aria-label"); label(attachBtn, "attach", "title");
  var fileInput = el("input"); fileInput.type = "file"; fileInput.hidden = true;
  fileInput.accept = ".png,.jpg,.jpeg,.pdf,.txt,.log,.ofd,.xml,image/png,image/jpeg,application/pdf,text/plain,application/xml";
  var input = el("textarea", "tb-input"); label(input, "placeholder", "placeholder"); label(input, "placeholder", "aria-label"); input.rows = 1;
  var sendBtn = label(el("button", "tb-send"), "send"); sendBtn.type = "submit";
  form.appendChild(attachBtn); form.appendChild(fileInput); form.appendChild(input); form.appendChild(sendBtn);
  var ticketsView = el("div", "tb-tickets"); ticketsView.setAttribute("role", "region"); label(ticketsView, "tickets", "aria-label");
  panel.appendChild(header); panel.appendChild(status); panel.appendChild(log); panel.appendChild(ticketsView); panel.appendChild(form);
  root.appendChild(launcher); root.appendChild(panel);

  function renderTopics() {
    topics.textContent = "";
    t().topics.forEach(function (topic) {
      var b = button(null, topic); b.addEventListener("click", function () { send(topic); }); topics.appendChild(b);
    });
  }
  renderTopics();

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
  // The status line remembers its key, so a change of script shows it in the new one.
  function setStatus(key, params, kind) {
    state.statusKey = key || null; state.statusParams = params; state.statusKind = kind;
    var text = key ? fmt(t()[key], params || {}) : "";
    status.textContent = text; status.className = "tb-status" + (text ? " tb-visible" : "") + (kind ? " tb-" + kind : "");
  }
  function toBottom() { log.scrollTop = log.scrollHeight; }
  // A reply taller than the log is scrolled to its start (its title), not its end.
  function reveal(box) {
    var room = log.clientHeight - 16;
    if (box.offsetHeight <= room) { toBottom(); return; }
    log.scrollTop += box.getBoundingClientRect().top - log.getBoundingClientRect().top - 8;
  }
  function uuid() { return (crypto.randomUUID ? crypto.randomUUID() : Date.now().toString(36) + Math.random().toString(36).slice(2)); }
  function clock(ms) { var d = new Date(ms || Date.now()); return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2); }
  function stamp(box, ms) {
    var when = el("time", "tb-time", clock(ms)); when.dateTime = new Date(ms || Date.now()).toISOString(); box.appendChild(when);
  }

  // Events are shown in sequence order, whatever order they arrive in (a replay after a reconnect can
  // bring an earlier agent message after a message the user has just typed).
  function place(box, seq) {
    if (seq == null) { log.insertBefore(box, typing); return; }
    box.setAttribute("data-seq", seq);
    var later = Array.prototype.find.call(log.querySelectorAll("[data-seq]"), function (e) { return e !== box && Number(e.getAttribute("data-seq")) > seq; });
    var pending = log.querySelector(".tb-pending");
    log.insertBefore(box, later || pending || typing);
  }

  // Links: http(s) addresses and this server's paths (/kb/…); everything else stays text.
  var LINK = /(https?:\/\/[^\s<>"'，。；、）」]+|\/kb\/[\w-]+)/g;
  function safeHref(href) {
    if (/^https?:\/\//i.test(href)) return href;
    if (/^\/(?!\/)/.test(href)) return cfg.server + href;
    return null;
  }
  function kbHref(path) {
    var script = state.region || state.script;
    return safeHref(path + (/^Hant/.test(script) ? "?script=" + encodeURIComponent(script) : ""));
  }
  function linkify(parent, text) {
    var last = 0;
    text.replace(LINK, function (match, _g, at) {
      var clean = match.replace(/[.,!?:;]+$/, ""), href = /^\/kb\//.test(clean) ? kbHref(clean) : safeHref(clean);
      parent.appendChild(document.createTextNode(text.slice(last, at)));
      if (href) { var a = el("a", "tb-inline-link", clean); a.href = href; a.target = "_blank"; a.rel = "noopener noreferrer"; parent.appendChild(a); }
      else parent.appendChild(document.createTextNode(clean));
      last = at + clean.length; return match;
    });
    parent.appendChild(document.createTextNode(text.slice(last)));
  }
  function articleCard(link, text) {
    var m = /「([^」]+)」|"(.+)"[,，]/.exec(String(text).split("\n")[0]), card = el("a", "tb-card");
    card.href = kbHref(link); card.target = "_blank"; card.rel = "noopener noreferrer";
    card.appendChild(el("span", "tb-card-icon", "📄"));
    var words = el("span", "tb-card-words");
    if (m) words.appendChild(el("strong", "tb-card-title", m[1] || m[2]));
    words.appendChild(label(el("span", "tb-card-action"), "article"));
    card.appendChild(words);
    return card;
  }
  // The text, with the line that carries the article's path shown as a card in its place.
  function body(box, text, link) {
    var content = el("div", "tb-text"), lines = String(text).split("\n"), cardDone = false;
    lines.forEach(function (line, i) {
      if (link && !cardDone && line.indexOf(link) >= 0) {
        cardDone = true; content.appendChild(articleCard(link, text)); return;
      }
      var p = el("div", "tb-line"); linkify(p, line); if (!line) p.appendChild(document.createElement("br"));
      content.appendChild(p);
    });
    if (link && !cardDone) content.appendChild(articleCard(link, text));
    box.appendChild(content);
  }
  function who(box, role, name) {
    var head = el("div", "tb-head"), w = el("span", "tb-who");
    if (role === "agent") { var avatar = el("span", "tb-avatar", (name || t().agent).trim().charAt(0).toUpperCase()); avatar.setAttribute("aria-hidden", "true"); head.appendChild(avatar); }
    if (name) w.textContent = name; else label(w, role);
    head.appendChild(w); box.appendChild(head);
  }
  function bubble(role, text, seq, name, ms, link) {
    var box = el("div", "tb-msg tb-" + role);
    if (role !== "user" && role !== "system") who(box, role, name);
    body(box, text, link);
    stamp(box, ms);
    place(box, seq);
    if (role === "user") welcome.classList.add("tb-started");
    return box;
  }
  function addButtons(box, buttons) {
    var row = el("div", "tb-buttons");
    buttons.forEach(function (b) {
      var btn = button(null, b.title); btn.setAttribute("data-payload", b.payload);
      btn.addEventListener("click", function () { answer(row, b.payload); send(b.payload, b.title); });
      row.appendChild(btn);
    });
    box.appendChild(row);
  }
  function answer(row, payload) {
    Array.prototype.forEach.call(row.querySelectorAll("button"), function (x) {
      x.disabled = true; if (payload != null && x.getAttribute("data-payload") === payload) { x.classList.add("tb-chosen"); x.setAttribute("aria-pressed", "true"); }
    });
    row.classList.add("tb-answered");
  }
  // A replayed button press shows the button's words, not its payload ("/helpful").
  function buttonTitle(text) {
    if (!/^\//.test(text || "")) return null;
    var found = Array.prototype.filter.call(log.querySelectorAll("[data-payload]"), function (b) { return b.getAttribute("data-payload") === text; }).pop();
    return found ? found.textContent : null;
  }
  // A user's message answers every earlier question: their buttons are spent, after a reload too.
  function answerEarlier(seq, text) {
    Array.prototype.forEach.call(log.querySelectorAll(".tb-buttons:not(.tb-answered):not(.tb-topics)"), function (row) {
      var box = row.closest("[data-seq]");
      if (box && Number(box.getAttribute("data-seq")) < seq) answer(row, text);
    });
  }

  // The rating: stars, an optional comment, one submission. After one is recorded (or the server says there
  // is one) every prompt shows as answered.
  function csat() {
    var box = el("div", "tb-csat"); box.setAttribute("data-csat", "");
    if (state.rated) { box.textContent = t().rated; box.classList.add("tb-done"); log.insertBefore(box, typing); return; }
    if (log.querySelector(".tb-csat:not(.tb-done)")) return;
    var prompt = label(el("p"), "csat"), row = el("div", "tb-stars"), chosen = 0;
    var comment = el("textarea", "tb-comment"); label(comment, "comment", "placeholder"); label(comment, "comment", "aria-label"); comment.rows = 2; comment.maxLength = 2000;
    var submit = label(button("tb-submit"), "submit"); submit.disabled = true;
    [1, 2, 3, 4, 5].forEach(function (n) {
      var b = button(null, n + "★"); b.setAttribute("aria-label", n + " / 5"); b.setAttribute("aria-pressed", "false");
      b.addEventListener("click", function () {
        chosen = n; submit.disabled = false;
        Array.prototype.forEach.call(row.children, function (x, i) { x.setAttribute("aria-pressed", String(i + 1 === n)); x.classList.toggle("tb-lit", i < n); });
      });
      row.appendChild(b);
    });
    submit.addEventListener("click", function () {
      if (!chosen) return;
      if (wsSend({ type: "csat", score: chosen, comment: comment.value.trim() })) { state.rated = true; markRated("thanks"); }
    });
    box.appendChild(prompt); box.appendChild(row); box.appendChild(comment); box.appendChild(submit);
    log.insertBefore(box, typing); toBottom();
  }
  function markRated(key) {
    Array.prototype.forEach.call(log.querySelectorAll(".tb-csat:not(.tb-done)"), function (box) {
      box.textContent = ""; box.appendChild(label(el("p"), key)); box.classList.add("tb-done");
    });
  }

  // Unread agent messages while the panel is closed: a badge on the launcher and the page's title.
  var pageTitle = document.title;
  function updateTitle() {
    badge.textContent = state.unread ? String(state.unread) : ""; badge.classList.toggle("tb-visible", state.unread > 0);
    launcher.setAttribute("aria-label", t().open + (state.unread ? " (" + fmt(t().unread, { n: state.unread }) + ")" : ""));
    document.title = state.unread ? "(" + state.unread + ") " + fmt(t().unread, { n: state.unread }) + " · " + pageTitle : pageTitle;
  }
  function isOpen() { return root.classList.contains("tb-open"); }

  function reopened() {  // the bot answers again after the conversation was closed
    if (state.convState === "resolved") { state.convState = "bot"; setStatus(null); }
  }

  function render(ev) {
    if (ev.seq != null) { if (state.shown[ev.seq]) return; state.shown[ev.seq] = true; if (ev.seq > state.lastSeq) { state.lastSeq = ev.seq; save(); } }
    var live = ev.seq != null && state.helloSeq != null && ev.seq > state.helloSeq;
    if (ev.type === "message") {
      if (ev.role === "user") {
        reopened();
        var pending = ev.client_msg_id && log.querySelector('[data-client-msg-id="' + CSS.escape(ev.client_msg_id) + '"]');
        state.outbox = state.outbox.filter(function (m) { return m.client_msg_id !== ev.client_msg_id; }); save();
        if (state.convState !== "bot") typing.classList.remove("tb-visible");
        if (ev.seq != null) answerEarlier(ev.seq, ev.text);
        if (!pending) setScript(detectScript(ev.display || ev.text || ""));
        if (pending) { pending.classList.remove("tb-pending"); place(pending, ev.seq); mark(pending, "delivered"); return; }
        mark(bubble("user", ev.display || buttonTitle(ev.text) || ev.text, ev.seq, null, ev.ts), "delivered"); toBottom(); return;
      }
      var role = ev.role === "agent" ? "agent" : ev.role === "system" ? "system" : "bot";
      if (role === "bot") reopened();
      if (ev.script) setScript(ev.script);
      var link = ev.link && /^\/kb\/[\w-]+$/.test(ev.link) ? ev.link : null;
      var name = role === "agent" ? ev.agent_name || state.agentName : null;
      var box = bubble(role, ev.text, ev.seq, name, ev.ts, link);
      if (role !== "system" && ev.seq != null) readUpTo(ev.seq);
      if (ev.buttons && ev.buttons.length) addButtons(box, ev.buttons);
      typing.classList.remove("tb-visible"); reveal(box);
      if (role === "agent" && live && (!isOpen() || document.hidden)) { state.unread++; updateTitle(); }
    } else if (ev.type === "attachment") {
      renderAttachment(ev);
    } else if (ev.type === "handoff" || ev.type === "queue") {
      if (ev.type === "handoff") state.convState = "queued";
      if (ev.type === "handoff" && ev.ticket_id) contactForm(ev.ticket_id, ev.seq);
      if (ev.position) setStatus("queued", { ahead: ev.position - 1, wait: Math.max(1, Math.round((ev.eta_seconds || 0) / 60)) }, "queue");
    } else if (ev.type === "assigned") {
      state.convState = "assigned"; state.agentName = ev.agent_name || null;
      setStatus("assigned", { agent: ev.agent_name || ev.agent || "" }, "queue");
    } else if (ev.type === "resolved") {
      state.convState = "resolved"; setStatus("resolved", null, "queue");
    } else if (ev.type === "handback" || ev.type === "handoff_cancelled") {
      state.convState = "bot"; setStatus(null);
    } else if (ev.type === "csat_request") {
      csat();
    } else if (ev.type === "csat") {
      state.rated = true; markRated(live ? "thanks" : "rated");
    } else if (ev.type === "typing") {
      typing.classList.add("tb-visible"); clearTimeout(render.typingTimer);
      render.typingTimer = setTimeout(function () { typing.classList.remove("tb-visible"); }, 4000);
    } else if (ev.type === "error") {
      if (ev.code === "unavailable") setStatus("reconnecting");
      else if (ev.code === "already_rated") { state.rated = true; markRated("rated"); }
      else if (ev.client_msg_id) {
        var failed = log.querySelector('[data-client-msg-id="' + CSS.escape(ev.client_msg_id) + '"]');
        if (failed && !ev.retryable) { failed.classList.remove("tb-pending"); failed.appendChild(el("span", "tb-who", t().error + ev.message)); }
      }
    }
  }

  // Delivered (stored, with its seq) and read (the bot or an agent answered after it) marks on the user's messages.
  function mark(box, key) {
    var m = box.querySelector(".tb-mark") || box.appendChild(el("span", "tb-mark"));
    m.setAttribute("data-mark", key); m.textContent = (key === "read" ? "✓✓ " : "✓ "); m.appendChild(label(el("span"), key));
  }
  function readUpTo(seq) {
    Array.prototype.forEach.call(log.querySelectorAll(".tb-user[data-seq] .tb-mark[data-mark='delivered']"), function (m) {
      if (Number(m.parentNode.getAttribute("data-seq")) < seq) mark(m.parentNode, "read");
    });
  }

  // ------------------------------------------------------------------ tickets
  // Nobody on duty: one card per ticket asks how to reach the user (kept masked and sealed on the ticket).
  function contactForm(ticketId, seq) {
    if (log.querySelector('[data-contact-ticket="' + CSS.escape(ticketId) + '"]')) return;
    var box = el("form", "tb-contact"); box.setAttribute("data-contact-ticket", ticketId);
    var field = el("input", "tb-contact-input"); field.type = "text"; field.maxLength = 254; field.autocomplete = "email";
    label(field, "contactPlaceholder", "placeholder"); label(field, "contactPlaceholder", "aria-label");
    var save = label(el("button", "tb-contact-save"), "contactSave"); save.type = "submit";
    var note = el("p", "tb-contact-note"); note.setAttribute("role", "status");
    box.appendChild(label(el("p"), "contactAsk")); box.appendChild(field); box.appendChild(save); box.appendChild(note);
    function done(masked) { box.textContent = ""; box.classList.add("tb-done"); box.appendChild(el("p", null, fmt(t().contactDone, { contact: masked }))); }
    box.addEventListener("submit", function (e) {
      e.preventDefault();
      var value = field.value.trim(); if (!value) return;
      var body = value.indexOf("@") >= 0 ? { email: value } : { phone: value };
      save.disabled = true;
      fetch(api("/contact"), { method: "PUT", headers: { Authorization: "Bearer " + state.token, "Content-Type": "application/json" }, body: JSON.stringify(body) })
        .then(function (r) { return r.json().catch(function () { return {}; }).then(function (j) { if (!r.ok) throw new Error(r.status); return j; }); })
        .then(function (j) { done(j.contact); }, function () { save.disabled = false; note.textContent = t().contactBad; field.focus(); });
    });
    if (seq != null) box.setAttribute("data-seq", seq + 0.5);  // just after the handoff's own message
    place(box, seq == null ? null : seq + 0.5);
    myTickets().then(function (items) {  // after a reload: already given
      var mine = items.filter(function (x) { return x.ticket_id === ticketId; })[0];
      if (mine && mine.contact) done(mine.contact);
      else if (mine && mine.status !== "open") box.remove();
    }, function () { /* the form stays */ });
  }
  function myTickets() {
    if (!state.conversationId) return Promise.resolve([]);
    return fetch(api("/tickets"), { headers: { Authorization: "Bearer " + state.token } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (j) { return j.items || []; });
  }
  function showTickets() {
    panel.classList.add("tb-show-tickets"); ticketsView.textContent = "";
    var back = label(button("tb-back"), "back"); back.addEventListener("click", hideTickets);
    ticketsView.appendChild(label(el("h3"), "tickets")); ticketsView.appendChild(back);
    var list = el("ul", "tb-ticket-list"); ticketsView.appendChild(list);
    myTickets().then(function (items) {
      if (!items.length) { list.appendChild(label(el("li", "tb-empty"), "noTickets")); return; }
      items.forEach(function (x) {
        var li = el("li", "tb-ticket"); li.setAttribute("data-ticket", x.ticket_id);
        var head = el("div", "tb-ticket-head"); head.appendChild(el("strong", null, x.ticket_id));
        head.appendChild(el("span", "tb-ticket-status tb-" + x.status, (t().ticketStatus[x.status] || x.status)));
        li.appendChild(head);
        if (x.summary) li.appendChild(el("div", "tb-ticket-summary", x.summary));
        var meta = [(t().tiers[x.severity] || x.severity)];
        if (x.status === "open" && x.first_response_due) meta.push(fmt(t().due, { due: x.first_response_due }));
        if (x.contact) meta.push(x.contact);
        li.appendChild(el("div", "tb-ticket-meta", meta.join(" · ")));
        list.appendChild(li);
      });
    }, function () { list.appendChild(label(el("li", "tb-empty"), "reconnecting")); });
    back.focus();
  }
  function hideTickets() { panel.classList.remove("tb-show-tickets"); ticketsBtn.focus(); }
  ticketsBtn.addEventListener("click", function () { if (panel.classList.contains("tb-show-tickets")) hideTickets(); else showTickets(); });

  // ------------------------------------------------------------------ attachments
  function api(path) { return cfg.server + "/api/v1/conversations/" + encodeURIComponent(state.conversationId) + path; }
  function size(n) { return n < 1024 ? n + " B" : n < 1048576 ? Math.round(n / 1024) + " KB" : (n / 1048576).toFixed(1) + " MB"; }
  // Attachments are served only with the conversation's token: fetched as a blob, shown from a blob: URL.
  function fetchBlob(url) {
    var href = safeHref(url); if (!href) return Promise.reject(new Error("bad url"));
    return fetch(href, { headers: { Authorization: "Bearer " + state.token } }).then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.blob(); });
  }
  function fileBox(name, bytes, seq, ms) {
    var box = el("div", "tb-msg tb-user tb-file"), line = el("div", "tb-file-name");
    line.appendChild(el("span", null, "📎 ")); line.appendChild(document.createTextNode(name + " · " + size(bytes)));
    box.appendChild(line); stamp(box, ms); place(box, seq); welcome.classList.add("tb-started");
    return box;
  }
  function thumbnail(box, blobUrl, name) {
    var img = el("img", "tb-thumb"); img.alt = name; img.src = blobUrl; box.insertBefore(img, box.firstChild); return img;
  }
  function renderAttachment(ev) {
    var pending = ev.client_msg_id && log.querySelector('[data-upload-id="' + CSS.escape(ev.client_msg_id) + '"]');
    if (pending) { pending.classList.remove("tb-pending"); place(pending, ev.seq); return; }
    var box = fileBox(ev.filename || t().file, ev.size || 0, ev.seq, ev.ts);
    box.setAttribute("data-attachment-id", ev.attachment_id || "");
    if (!ev.url) return;
    if (/^image\/(png|jpeg)$/.test(ev.content_type || "")) {
      fetchBlob(ev.url).then(function (b) { thumbnail(box, URL.createObjectURL(b), ev.filename || ""); }, function () { /* the name still shows */ });
    } else {
      var dl = label(button("tb-download"), "download");
      dl.addEventListener("click", function () {
        fetchBlob(ev.url).then(function (b) { var a = el("a"); a.href = URL.createObjectURL(b); a.download = ev.filename || "attachment"; document.body.appendChild(a); a.click(); a.remove(); });
      });
      box.appendChild(dl);
    }
    toBottom();
  }
  function upload(file) {
    if (!file) return;
    var id = uuid(), name = file.name || "screenshot.png";
    var box = fileBox(name, file.size, null, Date.now()); box.classList.add("tb-pending"); box.setAttribute("data-upload-id", id);
    if (/^image\/(png|jpeg)$/.test(file.type)) thumbnail(box, URL.createObjectURL(file), name);
    toBottom();
    ensureConversation().then(function () {
      var data = new FormData(); data.append("file", file, name); data.append("client_msg_id", id);
      return fetch(api("/attachments"), { method: "POST", headers: { Authorization: "Bearer " + state.token }, body: data })
        .then(function (r) { return r.json().catch(function () { return {}; }).then(function (j) { if (!r.ok) throw new Error(j.detail || "HTTP " + r.status); return j; }); });
    }).then(function () { /* shown for real when its event arrives */ }, function (err) {
      box.classList.remove("tb-pending"); box.classList.add("tb-failed"); box.appendChild(el("span", "tb-who", t().uploadFailed + (err && err.message || "")));
    });
  }
  attachBtn.addEventListener("click", function () { fileInput.click(); });
  fileInput.addEventListener("change", function () { Array.prototype.forEach.call(fileInput.files || [], upload); fileInput.value = ""; });
  input.addEventListener("paste", function (e) {  // a screenshot pasted from the clipboard
    var files = Array.prototype.filter.call((e.clipboardData && e.clipboardData.files) || [], function (f) { return /^image\//.test(f.type); });
    if (files.length) { e.preventDefault(); files.forEach(upload); }
  });

  function wsSend(obj) { if (state.ws && state.ws.readyState === 1) { state.ws.send(JSON.stringify(obj)); return true; } return false; }
  function flush() { state.outbox.forEach(function (m) { wsSend({ type: "message", text: m.text, client_msg_id: m.client_msg_id }); }); }

  function send(text, display) {
    text = (text || "").trim(); if (!text) return;
    setScript(detectScript(display && !/^\//.test(text) ? display : text));
    var m = { text: text, client_msg_id: uuid() };
    state.outbox.push(m); save();
    var box = bubble("user", display || text); box.classList.add("tb-pending"); box.setAttribute("data-client-msg-id", m.client_msg_id);
    if (state.convState === "bot" || state.convState === "resolved") typing.classList.add("tb-visible");  // the bot is working on it
    toBottom();
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
        state.sub = sent ? tokenSub(sent) : null; ensureConversation.pending = null; save(); connect();
      })
      .catch(function (err) {
        ensureConversation.pending = null;
        if (err instanceof IdentityRefused) {
          // Never fall back to an anonymous conversation behind a signed-in user's back.
          state.identityFailed = true; setStatus("identity", null, "error");
          Array.prototype.forEach.call(log.querySelectorAll(".tb-pending"), function (b) { b.classList.remove("tb-pending"); b.classList.add("tb-failed"); });
          throw err;
        }
        setStatus("reconnecting"); setTimeout(ensureConversation, 2000);
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
      if (ev.type === "hello") {
        state.retry = 0; if (ev.script) setScript(ev.script); if (state.helloSeq == null) state.helloSeq = ev.seq || 0;
        if (state.convState !== "queued" && state.convState !== "assigned" && state.convState !== "resolved") setStatus(null);
        flush(); return;
      }
      if (ev.type === "heartbeat") { if (state.statusKey === "reconnecting") setStatus(null); return; }
      render(ev);
    };
    ws.onclose = function (e) {
      clearTimeout(beat);
      if (state.ws !== ws) return;
      if (e.code === 4401 || e.code === 4404) { state.conversationId = null; state.token = null; save(); return; }
      setStatus("reconnecting");
      var delay = Math.min(10000, 500 * Math.pow(2, state.retry++));
      setTimeout(connect, delay);
    };
  }

  // A new conversation: the old one is left as it is on the server; the widget forgets it.
  function newConversation() {
    var old = state.ws; state.ws = null; if (old) old.close();
    Object.assign(state, { conversationId: null, token: null, lastSeq: 0, outbox: [], convState: "bot", shown: {}, rated: false, agentName: null, helloSeq: null, unread: 0 });
    Array.prototype.slice.call(log.children).forEach(function (c) { if (c !== welcome && c !== typing) c.remove(); });
    welcome.classList.remove("tb-started"); typing.classList.remove("tb-visible"); panel.classList.remove("tb-show-tickets");
    setStatus(null); save(); updateTitle(); input.focus();
  }
  newBtn.addEventListener("click", newConversation);

  function openPanel() {
    root.classList.add("tb-open"); state.unread = 0; updateTitle(); input.focus();
    if (state.conversationId) connect();
  }
  function closePanel() { root.classList.remove("tb-open"); launcher.focus(); }
  launcher.addEventListener("click", openPanel);
  closeBtn.addEventListener("click", closePanel);
  // Focus stays inside the open panel: Tab and Shift+Tab cycle through it, Esc closes it.
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { e.preventDefault(); closePanel(); return; }
    if (e.key !== "Tab") return;
    var items = Array.prototype.filter.call(panel.querySelectorAll("button, [href], textarea, input, [tabindex]:not([tabindex='-1'])"), function (x) {
      return !x.disabled && !x.hidden && x.offsetParent !== null;
    });
    if (!items.length) return;
    var first = items[0], last = items[items.length - 1];
    if (e.shiftKey && (document.activeElement === first || !panel.contains(document.activeElement))) { e.preventDefault(); last.focus(); }
    else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
  });
  document.addEventListener("visibilitychange", function () { if (!document.hidden && isOpen()) { state.unread = 0; updateTitle(); } });
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
  window.Triagebot = { open: openPanel, send: send, newConversation: newConversation, _state: state, _socket: function () { return state.ws; } };
})();
