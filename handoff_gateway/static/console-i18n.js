/* Agent console: words in both languages, and the small DOM helpers every console script uses.
   Codes (severities, reasons, intents, channels…) come from the server in words: GET /api/v1/console/labels. */
(function () {
  "use strict";
  var I18N = {
    zh: { title: "客服工作台", name: "账号", password: "密码", signin: "登录", presence: "状态",
          logout: "退出", queue: "排队", queues: "排队", empty: "接入一个会话开始工作。", board: "实时看板", accept: "接入", decline: "拒绝", take: "接入",
          offer: "新会话分配给您", send: "发送", note: "内部备注", transfer: "转接", resolve: "结束会话", handback: "交还机器人",
          canned: "知识库快捷回复", saved: "团队快捷回复", search: "搜索", reconnecting: "连接中断，正在重连…", intent: "意图", severity: "严重程度",
          reason: "转人工原因", channel: "渠道", language: "语言", customer: "客户", entities: "实体", articles: "已推送文章", tickets: "历史工单", ticket: "工单",
          verified: "已验证", anonymous: "匿名访客", visitor: "访客", undelivered: "消息未送达", openFailed: "打开失败", conversations: "会话", earlier: "历史会话",
          user: "用户", bot: "机器人", agent: "客服", system: "系统", due: "首响剩余", taken: "已被其他客服接入",
          agents: "客服", breaches: "SLA 超时", alert: "SLA 即将超时：", placeholder: "输入回复…", to: "转给（客服名或组 zh/en）",
          typing: "用户正在输入…", company: "公司", email: "邮箱", phone: "电话", vip: "VIP 等级", none: "无", summary: "转人工摘要",
          asked: "用户问了", answered: "机器人答了", why: "为什么转人工", words: "触发词", rating: "用户评价", notRated: "尚未评价", tags: "标签",
          addTag: "添加标签（回车）", removeTag: "删除标签", shortcuts: "快捷键", close: "关闭", notifyOn: "开启提醒", notifyOff: "提醒已开启",
          notifyDenied: "浏览器已拒绝通知", urgentEscalation: "紧急升级", makeArticle: "做成文章", articleSuggested: "已提交为文章建议",
          filter_mine: "我的", filter_unassigned: "未分配", filter_tickets: "工单", filter_resolved: "已解决", filter_all: "全部",
          searchPast: "搜索历史会话（客户、公司、工单、标签、内容）", noResults: "没有会话", open: "打开", readOnly: "只读：此会话不在您名下",
          load: "负载", position: "位置", late: "已超时", key_accept: "接入最新的分配或排队第一个会话", key_next: "切换到下一个会话",
          key_send: "发送回复", key_resolve: "结束当前会话", key_help: "显示/隐藏快捷键", key_search: "搜索历史会话", customerPanel: "客户信息",
          context: "上下文", transcript: "对话记录", articleAnswer: "知识库文章", took: "接入了会话", supervisor: "主管", lang: "English" },
    en: { title: "Agent console", name: "Name", password: "Password", signin: "Sign in", presence: "Status",
          logout: "Sign out", queue: "Queue", queues: "Queues", empty: "Take a conversation to start.", board: "Live board", accept: "Accept", decline: "Decline", take: "Take",
          offer: "New conversation for you", send: "Send", note: "Internal note", transfer: "Transfer", resolve: "Resolve", handback: "Hand back to bot",
          canned: "Canned answers (KB)", saved: "Team saved replies", search: "Search", reconnecting: "Connection lost, reconnecting…", intent: "Intent", severity: "Severity",
          reason: "Handoff reason", channel: "Channel", language: "Language", customer: "Customer", entities: "Entities", articles: "Articles shown", tickets: "Earlier tickets", ticket: "Ticket",
          verified: "verified", anonymous: "Anonymous visitor", visitor: "Visitor", undelivered: "Not delivered", openFailed: "could not open", conversations: "Conversations", earlier: "Earlier conversations",
          user: "User", bot: "Bot", agent: "Agent", system: "System", due: "first response in", taken: "taken by another agent",
          agents: "Agents", breaches: "SLA breaches", alert: "SLA about to be breached: ", placeholder: "Type a reply…", to: "Transfer to (agent name or group zh/en)",
          typing: "The user is typing…", company: "Company", email: "Email", phone: "Phone", vip: "VIP tier", none: "none", summary: "Handoff summary",
          asked: "The user asked", answered: "The bot answered", why: "Why it was handed off", words: "Trigger words", rating: "User rating", notRated: "Not rated yet", tags: "Tags",
          addTag: "Add a tag (Enter)", removeTag: "Remove tag", shortcuts: "Shortcuts", close: "Close", notifyOn: "Turn on alerts", notifyOff: "Alerts on",
          notifyDenied: "Notifications blocked by the browser", urgentEscalation: "Urgent escalation", makeArticle: "Make this an article", articleSuggested: "Suggested as an article",
          filter_mine: "Mine", filter_unassigned: "Unassigned", filter_tickets: "Tickets", filter_resolved: "Resolved", filter_all: "All",
          searchPast: "Search past conversations (customer, company, ticket, tag, text)", noResults: "No conversations", open: "Open", readOnly: "Read only: not assigned to you",
          load: "load", position: "position", late: "late", key_accept: "Accept the latest offer or the first in the queue", key_next: "Next conversation",
          key_send: "Send the reply", key_resolve: "Resolve the current conversation", key_help: "Show/hide shortcuts", key_search: "Search past conversations", customerPanel: "Customer",
          context: "Context", transcript: "Transcript", articleAnswer: "KB article ", took: "took the conversation", supervisor: "Supervisor", lang: "中文" }
  };
  var TC = window.TriageConsole = window.TriageConsole || {};
  var stored = localStorage.getItem("console-lang");
  TC.lang = (stored || (navigator.language || "zh").slice(0, 2)) === "en" ? "en" : "zh";
  TC.labels = null;  // the server's tables, after sign-in

  TC.t = function (k) { return I18N[TC.lang][k] || I18N.zh[k] || k; };
  /* A code in words: label("severities", "urgent") → 紧急 / Urgent; an unknown code stays as it is. */
  TC.label = function (table, code) {
    if (code == null || code === "") return "";
    var row = TC.labels && TC.labels[table] && TC.labels[table][code];
    return row ? (row[TC.lang] || row.zh) : String(code);
  };
  TC.colon = function () { return TC.lang === "zh" ? "：" : ": "; };
  TC.$ = function (id) { return document.getElementById(id); };
  TC.el = function (tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = String(text); return e; };
  TC.btn = function (label, cls, onClick) { var b = TC.el("button", cls, label); b.type = "button"; b.addEventListener("click", onClick); return b; };
  TC.clock = function (ms) {
    if (!ms) return "";
    var d = new Date(Number(ms)), now = new Date(), hm = String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
    return d.toDateString() === now.toDateString() ? hm : (d.getMonth() + 1) + "/" + d.getDate() + " " + hm;
  };
  TC.countdown = function (due) {
    if (!due) return "";
    var left = Math.round((Date.parse(due) - Date.now()) / 1000), sign = left < 0 ? "-" : "";
    left = Math.abs(left);
    return sign + Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
  };
  TC.applyI18n = function () {
    document.documentElement.lang = TC.lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach(function (e) { e.textContent = TC.t(e.dataset.i18n); });
    document.querySelectorAll("[data-i18n-label]").forEach(function (e) { e.setAttribute("aria-label", TC.t(e.dataset.i18nLabel)); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach(function (e) { e.placeholder = TC.t(e.dataset.i18nPlaceholder); });
    document.querySelectorAll(".lang-toggle").forEach(function (e) { e.textContent = TC.t("lang"); });
    /* data-code="table:code": a code in the server's words (the presence choices), once the tables are in */
    if (TC.labels) document.querySelectorAll("[data-code]").forEach(function (e) {
      var parts = e.dataset.code.split(":"); e.textContent = TC.label(parts[0], parts[1]);
    });
  };
  TC.setLang = function (lang) {
    TC.lang = lang; localStorage.setItem("console-lang", lang); TC.applyI18n();
    if (TC.rerender) TC.rerender();
  };
})();
