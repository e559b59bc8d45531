/* Agent console: the panel beside a conversation — the customer, the handoff summary in words, the user's
   rating, tags, the team's saved replies and the knowledge base's canned answers (pasted at the cursor). */
(function () {
  "use strict";
  var TC = window.TriageConsole, el = TC.el, t = TC.t;

  /* Put text where the agent's cursor is (replacing a selection), keeping the rest of the draft. */
  TC.insertAtCursor = function (ta, text) {
    var start = ta.selectionStart, end = ta.selectionEnd;
    var before = ta.value.slice(0, start), glue = before && !/\s$/.test(before) ? "\n" : "";
    ta.setRangeText(glue + text, start, end, "end");
    ta.focus();
    ta.dispatchEvent(new Event("input", { bubbles: true }));
  };

  function section(ctx, key) { var s = el("section", "panel-section"); s.dataset.section = key; s.appendChild(el("h3", null, t(key))); ctx.appendChild(s); return s; }
  function facts(box, rows) {
    var dl = el("dl");
    rows.forEach(function (r) { if (r[1] == null || r[1] === "") return; dl.appendChild(el("dt", null, t(r[0]))); var dd = el("dd"); dd.appendChild(el("bdi", null, r[1])); dd.dataset.fact = r[0]; dl.appendChild(dd); });
    box.appendChild(dl);
  }
  /* Earlier conversations by when and what about; a click opens one (where the access rules allow). */
  function history(box, items) {
    if (!items.length) return;
    box.appendChild(el("h4", null, t("earlier")));
    var ul = el("ul", "history");
    items.forEach(function (h) {
      var words = [TC.clock(h.created_at), TC.label("intents", h.intent) || TC.t("visitor"), TC.label("states", h.state), h.ticket_id].filter(Boolean).join(" · ");
      var li = el("li"); li.appendChild(TC.btn(words, "link", function () { TC.openConversation(h.conversation_id); })); ul.appendChild(li);
    });
    box.appendChild(ul);
  }

  function customer(ctx, c) {
    var box = section(ctx, "customerPanel"), cu = c.customer;
    var head = el("p", "customer-name");
    head.appendChild(el("bdi", null, c.display_name || t("anonymous")));
    if (cu.verified) head.appendChild(el("span", "badge verified", t("verified")));
    box.appendChild(head);
    var where = [TC.label("channels", c.channel)].concat(c.platform ? [c.platform.app, c.platform.corp_id, c.platform.user_id] : []);
    facts(box, [["company", cu.tenant], ["email", cu.email], ["phone", cu.phone], ["vip", cu.vip_tier ? "VIP " + cu.vip_tier : ""],
      ["channel", where.filter(Boolean).join(" · ")], ["language", TC.label("languages", c.language)]]);
    history(box, c.history || []);
    if (c.earlier_tickets.length) { box.appendChild(el("h4", null, t("tickets"))); box.appendChild(el("p", null, c.earlier_tickets.join("、"))); }
  }

  function summary(ctx, c) {
    var box = section(ctx, "summary"), s = c.summary, conf = c.intent.confidence;
    facts(box, [["intent", c.intent.name ? TC.label("intents", c.intent.name) + (conf ? " (" + Math.round(conf * 100) + "%)" : "") : ""],
      ["severity", TC.label("severities", c.handoff.severity || c.severity)], ["reason", TC.label("reasons", s.reason)],
      ["ticket", c.ticket_id], ["articles", c.kb_articles_shown.map(function (a) { return (c.kb_article_titles || {})[a] || a; }).join("、")]]);
    if (s.trigger) { var q = el("blockquote", "trigger"); q.appendChild(el("bdi", null, s.trigger)); box.appendChild(el("h4", null, t("why"))); box.appendChild(q); }
    if (s.trigger_words.length) { var w = el("p", "trigger-words", t("words") + TC.colon()); s.trigger_words.forEach(function (x) { w.appendChild(el("mark", null, x)); }); box.appendChild(w); }
    if (s.asked.length) { box.appendChild(el("h4", null, t("asked"))); var ul = el("ul"); s.asked.forEach(function (x) { ul.appendChild(el("li", null, x)); }); box.appendChild(ul); }
    if (s.answered.length) { box.appendChild(el("h4", null, t("answered"))); var ol = el("ul"); s.answered.forEach(function (x) { var title = x.article_id && (c.kb_article_titles || {})[x.article_id]; ol.appendChild(el("li", null, title ? t("articleAnswer") + "「" + title + "」" : x.text)); }); box.appendChild(ol); }
  }

  function rating(ctx, c) {
    var box = section(ctx, "rating");
    if (!c.rating) { box.appendChild(el("p", "muted", t("notRated"))); return; }
    var p = el("p", "stars", "★".repeat(c.rating.score) + "☆".repeat(5 - c.rating.score) + " " + c.rating.score + "/5");
    p.dataset.score = c.rating.score; box.appendChild(p);
    if (c.rating.comment) box.appendChild(el("blockquote", null, c.rating.comment));
  }

  function tags(ctx, tb, c) {
    var box = section(ctx, "tags"), list = el("div", "tags"), editable = tb.mine || (TC.agent && TC.agent.role === "supervisor");
    var current = c.tags.slice();
    function save(next) {
      TC.api("PUT", "/api/v1/conversations/" + encodeURIComponent(tb.cid) + "/tags", { tags: next })
        .then(function (r) { current = r.tags; draw(); TC.refreshList(); }, function (e) { TC.showError({ message: e.message }); });
    }
    function draw() {
      list.textContent = "";
      current.forEach(function (tg) {
        var chip = el("span", "tag"); chip.appendChild(el("bdi", null, tg));
        if (editable) { var x = TC.btn("×", "link", function () { save(current.filter(function (o) { return o !== tg; })); }); x.setAttribute("aria-label", t("removeTag") + " " + tg); chip.appendChild(x); }
        list.appendChild(chip);
      });
    }
    draw(); box.appendChild(list);
    if (!editable) return;
    var input = el("input", "tag-input"); input.placeholder = t("addTag"); input.setAttribute("aria-label", t("addTag")); input.maxLength = 24;
    input.addEventListener("keydown", function (e) { if (e.key === "Enter" && input.value.trim()) { save(current.concat([input.value.trim()])); input.value = ""; } });
    box.appendChild(input);
  }

  function pasteList(box, items, toText, tb) {
    box.textContent = "";
    items.forEach(function (h) {
      var li = el("li");
      li.appendChild(TC.btn(h.title, "link", function () { TC.insertAtCursor(tb.input, toText(h)); }));
      box.appendChild(li);
    });
  }

  function savedReplies(ctx, tb) {
    var box = section(ctx, "saved"), search = el("input"), results = el("ul", "saved-replies");
    search.placeholder = t("search"); search.setAttribute("aria-label", t("saved"));
    function load() {
      TC.api("GET", "/api/v1/replies?lang=" + TC.lang + "&q=" + encodeURIComponent(search.value.trim()))
        .then(function (r) { pasteList(results, r.items, function (h) { return h.text; }, tb); });
    }
    search.addEventListener("input", load);
    box.appendChild(search); box.appendChild(results); load();
  }

  function canned(ctx, tb) {
    var box = section(ctx, "canned"), search = el("input"), results = el("ul", "canned");
    search.placeholder = t("search"); search.setAttribute("aria-label", t("canned"));
    search.addEventListener("keydown", function (e) {
      if (e.key !== "Enter") return;
      TC.api("GET", "/api/v1/kb/search/canned?limit=10&q=" + encodeURIComponent(search.value)).then(function (r) {
        pasteList(results, r.items, function (h) { return h.steps.map(function (s, i) { return (i + 1) + ". " + s.replace(/\*\*/g, ""); }).join("\n"); }, tb);
      });
    });
    box.appendChild(search); box.appendChild(results);
  }

  /* The whole panel of one conversation, from its context card. */
  TC.renderCard = function (tb, c) {
    var ctx = tb.ctx; ctx.textContent = "";
    customer(ctx, c); summary(ctx, c); rating(ctx, c); tags(ctx, tb, c);
    if (tb.mine) { savedReplies(ctx, tb); canned(ctx, tb); }
  };
})();
