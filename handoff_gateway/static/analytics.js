/* Analytics page — no build step, no chart library: bars are drawn as SVG here. Texts go in with textContent. */
(function () {
  "use strict";
  var I18N = {
    zh: { title: "数据分析", name: "账号", password: "密码", signin: "登录", console: "返回工作台", since: "开始", until: "结束", channel: "渠道",
          language: "语言", all: "全部", ch_web: "网页", ch_rest: "REST 接口", ch_callback: "回调接口", ch_wecom: "企业微信", ch_dingtalk: "钉钉",
          lang_zh: "中文", lang_en: "英文", refresh: "刷新", export: "导出 CSV", daily: "每日会话", byReason: "转人工原因", bySeverity: "转人工严重程度",
          sla: "响应与解决时间（对照 SLA）", csat: "满意度分布", topIntents: "热门意图", topFallbacks: "常见未识别问题", byDimension: "按渠道与语言",
          gaps: "知识缺口（聚类）", conversations: "会话数", deflection: "机器人解决率", handoffRate: "转人工率", breaches: "SLA 超时", csatAvg: "平均满意度",
          fallbacks: "未识别", notHelpful: "回答没帮助", firstResponse: "首次响应", resolution: "解决", count: "数量", p50: "中位数", p90: "P90",
          within: "达标", loading: "加载中…", forbidden: "仅限主管查看数据分析。", failed: "加载失败：", none: "暂无数据", size: "条",
          nearestIntent: "最接近的意图", nearestArticle: "最接近的文章", conversationsShort: "会话", handedOff: "转人工", deflected: "机器人解决",
          urgent: "紧急", important: "重要", normal: "一般", dimension: "维度",
          user_request: "用户要求人工", complaint: "投诉", negative_sentiment: "用户不满", repeat_after_answer: "问题未解决",
          repeated_fallback: "多次未识别", not_helpful: "回答没帮助", no_kb_answer: "知识库无答案", fallback: "未识别", handoff: "人工回复", article: "待写文章" },
    en: { title: "Analytics", name: "Name", password: "Password", signin: "Sign in", console: "Back to the console", since: "From", until: "To", channel: "Channel",
          language: "Language", all: "All", ch_web: "Web", ch_rest: "REST API", ch_callback: "Callback API", ch_wecom: "WeCom", ch_dingtalk: "DingTalk",
          lang_zh: "Chinese", lang_en: "English", refresh: "Refresh", export: "Export CSV", daily: "Conversations per day", byReason: "Handoffs by reason",
          bySeverity: "Handoffs by severity", sla: "Response and resolution times (vs SLA)", csat: "CSAT distribution", topIntents: "Top intents",
          topFallbacks: "Top fallbacks", byDimension: "By channel and language", gaps: "Knowledge gaps (clusters)", conversations: "Conversations",
          deflection: "Bot-answered rate", handoffRate: "Handoff rate", breaches: "SLA breaches", csatAvg: "Average CSAT", fallbacks: "Fallbacks",
          notHelpful: "Not helpful", firstResponse: "First response", resolution: "Resolution", count: "Count", p50: "Median", p90: "P90", within: "Within SLA",
          loading: "Loading…", forbidden: "Analytics are for supervisors only.", failed: "Could not load: ", none: "No data yet", size: "entries",
          nearestIntent: "Nearest intent", nearestArticle: "Nearest article", conversationsShort: "Conversations", handedOff: "Handed off", deflected: "Bot-answered",
          urgent: "Urgent", important: "Important", normal: "Normal", dimension: "Dimension",
          user_request: "Asked for a person", complaint: "Complaint", negative_sentiment: "Unhappy user", repeat_after_answer: "Not solved",
          repeated_fallback: "Not understood twice", not_helpful: "Answer didn't help", no_kb_answer: "No KB answer", fallback: "Fallback", handoff: "Agent reply", article: "Article candidate" }
  };
  var lang = (localStorage.getItem("console-lang") || (navigator.language || "zh").slice(0, 2)) === "en" ? "en" : "zh";
  var token = sessionStorage.getItem("agent-token");
  var last = null;
  var gapsLast = null;
  function t(k) { return (I18N[lang][k] != null) ? I18N[lang][k] : k; }
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = String(text); return e; }
  function svg(tag, attrs, text) {
    var e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text != null) e.textContent = String(text);
    return e;
  }
  function pct(x) { return x == null ? "–" : (Math.round(x * 1000) / 10) + "%"; }
  function secs(s) { if (s == null) return "–"; if (s < 60) return Math.round(s) + (lang === "zh" ? " 秒" : " s"); if (s < 3600) return Math.round(s / 60) + (lang === "zh" ? " 分钟" : " min"); return (Math.round(s / 360) / 10) + (lang === "zh" ? " 小时" : " h"); }
  function applyI18n() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach(function (e) { e.textContent = t(e.dataset.i18n); });
    $("lang-toggle").textContent = lang === "zh" ? "English" : "中文";
  }

  /* Horizontal bars: one row per {label, value, late}. */
  function hbars(box, rows) {
    box.textContent = "";
    if (!rows.length) { box.appendChild(el("p", "empty", t("none"))); return; }
    var max = Math.max.apply(null, rows.map(function (r) { return r.value; })) || 1;
    var rowH = 22, labelW = 190, width = 460, height = rows.length * rowH + 4;
    var chart = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img" });
    rows.forEach(function (r, i) {
      var y = i * rowH + 2, w = Math.max(1, (width - labelW - 50) * r.value / max);
      var label = String(r.label);
      var text = svg("text", { x: 0, y: y + 14 }, label.length > 30 ? label.slice(0, 29) + "…" : label);
      text.appendChild(svg("title", {}, label));
      chart.appendChild(text);
      chart.appendChild(svg("rect", { x: labelW, y: y + 3, width: w, height: rowH - 8, "class": "bar" + (r.late ? " late" : "") }));
      chart.appendChild(svg("text", { x: labelW + w + 4, y: y + 14 }, r.value));
    });
    box.appendChild(chart);
  }

  /* Vertical bars per day. */
  function vbars(box, days) {
    box.textContent = "";
    if (!days.some(function (d) { return d.conversations; })) { box.appendChild(el("p", "empty", t("none"))); return; }
    var max = Math.max.apply(null, days.map(function (d) { return d.conversations; })) || 1;
    var width = 420, height = 160, base = 130, step = width / days.length;
    var chart = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img" });
    days.forEach(function (d, i) {
      var h = (base - 14) * d.conversations / max, x = i * step + step * 0.15, w = step * 0.7;
      chart.appendChild(svg("rect", { x: x, y: base - h, width: w, height: h, "class": "bar" }));
      if (d.conversations) chart.appendChild(svg("text", { x: x, y: base - h - 2 }, d.conversations));
      if (days.length <= 14 || i % Math.ceil(days.length / 14) === 0) chart.appendChild(svg("text", { x: x, y: base + 14 }, d.day.slice(5)));
    });
    box.appendChild(chart);
  }

  function table(box, head, rows) {
    box.textContent = "";
    var tbl = el("table"), tr = el("tr");
    head.forEach(function (h) { tr.appendChild(el("th", null, h)); });
    tbl.appendChild(tr);
    rows.forEach(function (r) { var row = el("tr"); r.forEach(function (c) { row.appendChild(el("td", null, c)); }); tbl.appendChild(row); });
    box.appendChild(tbl);
  }

  function card(label, value) { var c = el("div", "figure"); c.appendChild(el("b", null, value)); c.appendChild(el("span", null, label)); return c; }

  function render(n) {
    var cards = $("cards");
    cards.textContent = "";
    [["conversations", n.conversations], ["deflection", pct(n.deflection_rate)], ["handoffRate", pct(n.handoff_rate)], ["breaches", n.sla_breaches],
     ["csatAvg", n.csat.average == null ? "–" : n.csat.average], ["fallbacks", n.fallbacks], ["notHelpful", n.not_helpful]]
      .forEach(function (c) { cards.appendChild(card(t(c[0]), c[1])); });
    vbars($("chart-daily"), n.daily);
    hbars($("chart-reason"), Object.keys(n.handoffs.by_reason).map(function (k) { return { label: t(k), value: n.handoffs.by_reason[k] }; }));
    hbars($("chart-severity"), Object.keys(n.handoffs.by_severity).map(function (k) { return { label: t(k), value: n.handoffs.by_severity[k], late: k === "urgent" }; }));
    var slaRows = [];
    [["firstResponse", n.first_response], ["resolution", n.resolution]].forEach(function (p) {
      slaRows.push([t(p[0]), p[1].count, secs(p[1].p50_seconds), secs(p[1].p90_seconds), p[1].within_sla, p[1].breaches]);
      Object.keys(p[1].by_severity).forEach(function (sev) {
        var s = p[1].by_severity[sev];
        slaRows.push(["· " + t(sev), s.count, secs(s.p50_seconds), secs(s.p90_seconds), s.within_sla, s.breaches]);
      });
    });
    table($("table-sla"), ["", t("count"), t("p50"), t("p90"), t("within"), t("breaches")], slaRows);
    hbars($("chart-csat"), ["1", "2", "3", "4", "5"].map(function (k) { return { label: "★".repeat(Number(k)), value: n.csat.distribution[k], late: Number(k) <= 2 }; }));
    hbars($("chart-intents"), n.top_intents.map(function (r) { return { label: r.intent, value: r.count }; }));
    hbars($("chart-fallbacks"), n.top_fallbacks.map(function (r) { return { label: r.text, value: r.count }; }));
    var dims = [];
    ["by_channel", "by_language"].forEach(function (d) {
      Object.keys(n[d]).forEach(function (k) {
        var v = n[d][k], name = d === "by_channel" ? t("ch_" + k) : t("lang_" + k);
        dims.push([name, v.conversations, pct(v.deflection_rate), pct(v.handoff_rate)]);
      });
    });
    table($("table-dimensions"), [t("dimension"), t("conversationsShort"), t("deflection"), t("handoffRate")], dims);
  }

  function renderGaps(g) {
    var box = $("gaps");
    box.textContent = "";
    if (!g.clusters.length) { box.appendChild(el("p", "empty", t("none"))); return; }
    g.clusters.forEach(function (c, i) {
      var item = el("div", "cluster");
      var kinds = Object.keys(c.kinds).map(function (k) { return t(k) + " " + c.kinds[k]; }).join(" · ");
      item.appendChild(el("strong", null, "#" + (i + 1) + " · " + c.size + " " + t("size") + " · " + t("lang_" + c.language) + " · " + kinds));
      var near = [];
      if (c.intent) near.push(t("nearestIntent") + ": " + c.intent.name + " (" + c.intent.score + ")");
      if (c.article) near.push(t("nearestArticle") + ": " + c.article.title + " (" + c.article.score + ")");
      item.appendChild(el("div", "muted", near.join(" · ")));
      var ul = el("ul");
      c.examples.slice(0, 3).forEach(function (x) { ul.appendChild(el("li", null, x)); });
      item.appendChild(ul);
      box.appendChild(item);
    });
  }

  function query() {
    var p = new URLSearchParams();
    [["since", $("since").value], ["until", $("until").value], ["channel", $("channel").value], ["language", $("language").value]]
      .forEach(function (kv) { if (kv[1]) p.set(kv[0], kv[1]); });
    return p.toString();
  }

  function get(path) {
    return fetch(path, { headers: { Authorization: "Bearer " + token } }).then(function (r) {
      if (r.status === 401) { sessionStorage.removeItem("agent-token"); token = null; showLogin(); throw new Error("401"); }
      if (!r.ok) { var e = new Error(String(r.status)); e.status = r.status; throw e; }
      return r;
    });
  }

  function load() {
    $("status").textContent = t("loading");
    var q = query();
    get("/api/v1/analytics?" + q).then(function (r) { return r.json(); }).then(function (n) {
      last = n; render(n); $("status").textContent = "";
      $("since").value = n.since; $("until").value = n.until;
      return get("/api/v1/analytics/gaps?top=8&since=" + n.since + "&until=" + n.until).then(function (r) { return r.json(); });
    }).then(function (g) { gapsLast = g; renderGaps(g); }).catch(function (e) {
      if (e.status === 403) { $("figures").hidden = true; $("status").textContent = t("forbidden"); }
      else if (e.message !== "401") { $("status").textContent = t("failed") + e.message; }
    });
  }

  function exportCsv() {
    get("/api/v1/analytics.csv?" + query()).then(function (r) { return r.blob(); }).then(function (blob) {
      var a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = "analytics.csv";
      document.body.appendChild(a); a.click(); a.remove();
      setTimeout(function () { URL.revokeObjectURL(a.href); }, 1000);
    }).catch(function (e) { $("status").textContent = t("failed") + e.message; });
  }

  function showLogin() { $("analytics").hidden = true; $("login").hidden = false; }
  function start() { $("login").hidden = true; $("analytics").hidden = false; load(); }

  $("lang-toggle").addEventListener("click", function () {
    lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("console-lang", lang); applyI18n();
    if (last) render(last);
    if (gapsLast) renderGaps(gapsLast);
  });
  $("filters").addEventListener("submit", function (e) { e.preventDefault(); load(); });
  $("export").addEventListener("click", exportCsv);
  $("login-form").addEventListener("submit", function (e) {
    e.preventDefault();
    fetch("/api/v1/agents/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name: $("login-name").value, password: $("login-password").value }) })
      .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.detail); return j; }); })
      .then(function (j) { token = j.token; sessionStorage.setItem("agent-token", j.token); start(); })
      .catch(function (err) { $("login-error").textContent = err.message; });
  });
  applyI18n();
  if (token) start(); else showLogin();
})();
