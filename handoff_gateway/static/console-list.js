/* Agent console: the conversation list — filters (mine, unassigned, tickets, resolved, all) and a search over
   past conversations (GET /api/v1/agent/conversations). Rows are named by the customer, never by hex ids. */
(function () {
  "use strict";
  var TC = window.TriageConsole, el = TC.el;
  var VIEWS = ["mine", "unassigned", "tickets", "resolved", "all"];
  var state = { view: "mine", q: "", timer: null, rows: [] };

  /* What the console calls a conversation: the customer's name, else 访客 · what it is about. */
  TC.customerLabel = function (name, intent, channel) {
    if (name) return name;
    return TC.t("visitor") + " · " + (TC.label("intents", intent) || TC.label("channels", channel) || "—");
  };

  function renderFilters() {
    var box = TC.$("filters"); box.textContent = "";
    VIEWS.forEach(function (v) {
      var b = TC.btn(TC.t("filter_" + v), "filter", function () { state.view = v; renderFilters(); load(); });
      b.setAttribute("role", "tab"); b.dataset.view = v; b.setAttribute("aria-selected", v === state.view ? "true" : "false");
      box.appendChild(b);
    });
  }

  function renderRows() {
    var list = TC.$("conv-list"); list.textContent = "";
    if (!state.rows.length) { list.appendChild(el("li", "muted", TC.t("noResults"))); return; }
    state.rows.forEach(function (r) {
      var li = el("li", "conv-row"); li.dataset.conversation = r.conversation_id;
      var head = el("div", "row-head");
      head.appendChild(el("bdi", "row-name", TC.customerLabel(r.display_name, r.intent, r.channel)));
      head.appendChild(el("time", "row-time", TC.clock(r.updated_at || r.created_at)));
      li.appendChild(head);
      var meta = el("div", "row-meta");
      meta.appendChild(el("span", "badge " + r.severity, TC.label("severities", r.severity)));
      meta.appendChild(el("span", "state", TC.label("states", r.state)));
      if (r.ticket_id) meta.appendChild(el("span", "ticket", TC.t("ticket") + " " + r.ticket_id));
      if (r.rating) meta.appendChild(el("span", "stars", "★" + r.rating));
      li.appendChild(meta);
      if (r.tenant) li.appendChild(el("bdi", "row-company", r.tenant));
      if (r.tags && r.tags.length) { var tags = el("div", "tags"); r.tags.forEach(function (tg) { tags.appendChild(el("bdi", "tag", tg)); }); li.appendChild(tags); }
      li.tabIndex = 0;
      li.addEventListener("click", function () { TC.openConversation(r.conversation_id); });
      li.addEventListener("keydown", function (e) { if (e.key === "Enter") TC.openConversation(r.conversation_id); });
      list.appendChild(li);
    });
  }

  function load() {
    var path = "/api/v1/agent/conversations?view=" + state.view + "&q=" + encodeURIComponent(state.q);
    return TC.api("GET", path).then(function (r) { state.rows = r.items; renderRows(); });
  }

  TC.$("list-search").addEventListener("input", function (e) {
    clearTimeout(state.timer); var q = e.target.value.trim();
    state.timer = setTimeout(function () { state.q = q; if (q && state.view !== "all") { state.view = "all"; renderFilters(); } load(); }, 300);
  });

  /* After a queue change: a little later, once, however many changes came together. */
  TC.refreshList = function () { clearTimeout(state.refresh); state.refresh = setTimeout(load, 250); };
  TC.startList = function () { renderFilters(); return load(); };
  TC.renderList = function () { renderFilters(); renderRows(); };
})();
