/* Agent console: the supervisor's live board at the top — queues by group and severity with SLA countdowns,
   agents with presence and load, breaches. Refreshed on every desk change and every few seconds. */
(function () {
  "use strict";
  var TC = window.TriageConsole, el = TC.el;
  var SEVERITIES = ["urgent", "important", "normal"], REFRESH_MS = 5000;
  var state = { data: null, timer: null, poll: null };

  function slaChip(item) {
    var due = item.sla ? item.sla.first_response_due : "";
    var chip = el("span", "sla-chip", "");
    chip.appendChild(el("span", null, TC.label("intents", item.intent) || TC.label("reasons", item.reason) || TC.t("visitor")));
    var clock = el("span", "sla", TC.countdown(due)); clock.dataset.due = due; clock.dataset.prefix = "";
    chip.appendChild(clock);
    return chip;
  }

  function renderQueues(queues) {
    var box = TC.$("board-queues"); box.textContent = "";
    var table = el("table", "board-grid"), head = el("tr");
    head.appendChild(el("th", null, TC.t("queue")));
    SEVERITIES.forEach(function (s) { head.appendChild(el("th", null, TC.label("severities", s))); });
    table.appendChild(head);
    Object.keys(queues).forEach(function (group) {
      var tr = el("tr"); tr.appendChild(el("th", null, TC.label("languages", group)));
      SEVERITIES.forEach(function (s) {
        var items = queues[group].filter(function (i) { return i.severity === s; });
        var td = el("td", "cell " + s + (items.length ? " busy" : "")); td.dataset.group = group; td.dataset.severity = s;
        td.appendChild(el("strong", "count", items.length));
        items.slice(0, 4).forEach(function (i) { td.appendChild(slaChip(i)); });
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
    box.appendChild(table);
  }

  function renderAgents(agents) {
    var ul = TC.$("board-agents"); ul.textContent = "";
    agents.forEach(function (a) {
      var li = el("li", "agent-row"); li.dataset.agent = a.name;
      li.appendChild(el("span", "dot " + a.presence, ""));
      li.appendChild(el("bdi", "agent-name", a.display_name));
      li.appendChild(el("span", "presence-word", TC.label("presence", a.presence)));
      li.appendChild(el("span", "load", TC.t("load") + " " + a.open.length + "/" + (a.role === "supervisor" ? "∞" : a.capacity)));
      ul.appendChild(li);
    });
  }

  function renderBreaches(breaches) {
    var ul = TC.$("board-breaches"); ul.textContent = "";
    if (!breaches.length) { ul.appendChild(el("li", "muted", TC.t("none"))); return; }
    breaches.slice().reverse().slice(0, 10).forEach(function (b) {
      var li = el("li", "breach");
      li.appendChild(el("span", null, TC.label("breaches", b.kind)));
      li.appendChild(el("time", "row-time", TC.clock(b.at * 1000)));
      li.appendChild(TC.btn(TC.t("open"), "link", function () { TC.openConversation(b.conversation_id); }));
      ul.appendChild(li);
    });
  }

  function render() {
    if (!state.data) return;
    renderQueues(state.data.queues); renderAgents(state.data.agents); renderBreaches(state.data.breaches);
  }

  function load() {
    if (TC.$("board").hidden) return Promise.resolve();
    return TC.api("GET", "/api/v1/supervisor/overview").then(function (o) { state.data = o; render(); });
  }

  TC.$("board-toggle").addEventListener("click", function () {
    var b = TC.$("board"); b.hidden = !b.hidden;
    TC.$("board-toggle").setAttribute("aria-pressed", b.hidden ? "false" : "true");
    load();
  });

  TC.refreshBoard = function () { clearTimeout(state.timer); state.timer = setTimeout(load, 250); };
  TC.renderBoard = render;
  /* Supervisors see the board first; agents never (the overview is for supervisors). */
  TC.startBoard = function (supervisor) {
    TC.$("board-toggle").hidden = !supervisor;
    TC.$("board").hidden = !supervisor;
    TC.$("board-toggle").setAttribute("aria-pressed", supervisor ? "true" : "false");
    if (!supervisor) return;
    clearInterval(state.poll); state.poll = setInterval(load, REFRESH_MS);
    load();
  };
})();
