/* Agent console: a sound and a desktop notification (Notification API) for offers and urgent escalations.
   Browsers allow both only after a user gesture, so permission is asked from the "turn on alerts" button. */
(function () {
  "use strict";
  var TC = window.TriageConsole;
  var audio = null;
  TC.sounds = 0;  // how many alerts sounded (the browser tests read it)

  function beep(urgent) {
    if (!audio) return;
    var osc = audio.createOscillator(), gain = audio.createGain();
    osc.frequency.value = urgent ? 880 : 660; gain.gain.value = 0.08;
    osc.connect(gain); gain.connect(audio.destination);
    osc.start(); osc.stop(audio.currentTime + (urgent ? 0.45 : 0.2));
    TC.sounds++;
  }

  function enabled() { return localStorage.getItem("console-alerts") === "on"; }
  function render() {
    var b = TC.$("notify-toggle"), denied = "Notification" in window && Notification.permission === "denied";
    b.dataset.i18n = !enabled() ? "notifyOn" : denied ? "notifyDenied" : "notifyOff";
    b.textContent = TC.t(b.dataset.i18n);
    b.setAttribute("aria-pressed", enabled() ? "true" : "false");
  }

  function unlock() {
    if (!audio && (window.AudioContext || window.webkitAudioContext)) audio = new (window.AudioContext || window.webkitAudioContext)();
  }

  TC.$("notify-toggle").addEventListener("click", function () {
    unlock();  // inside the click: the browser lets this page play sound from now on
    if (enabled()) { localStorage.setItem("console-alerts", "off"); render(); return; }
    localStorage.setItem("console-alerts", "on");
    if ("Notification" in window && Notification.permission === "default") Notification.requestPermission().then(render, render);
    render();
  });
  // Any click on the console also unlocks sound for an agent who turned alerts on in an earlier session.
  document.addEventListener("click", function () { if (enabled()) unlock(); }, { once: true });

  /* Sound, and a desktop notification while permission is granted; clicking it brings the console forward. */
  TC.alertUser = function (title, body, tag, urgent) {
    if (!enabled()) return;
    beep(urgent);
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    var n = new Notification(title, { body: body, tag: tag, requireInteraction: !!urgent });
    n.onclick = function () { window.focus(); if (n.close) n.close(); };
  };
  TC.renderNotify = render;
  render();
})();
