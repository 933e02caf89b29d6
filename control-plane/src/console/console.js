// Berth console: live regions over server-sent events. Pages work without
// this script; with it, #live is replaced whenever the server says the
// cluster changed, without reloading the page.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var state = document.getElementById("live-state");
  if (!live || !window.EventSource) { return; }
  var say = function (text) { if (state) { state.textContent = text; } };
  var source = new EventSource("/console/live?path=" + encodeURIComponent(live.getAttribute("data-live")));
  source.addEventListener("open", function () { say("live"); });
  source.addEventListener("error", function () { say("reconnecting…"); });
  source.addEventListener("live", function (event) {
    // Keep keyboard focus, and whatever was typed, in the controls that
    // are re-rendered (a stop reason being written when the task moves).
    var focused = document.activeElement && live.contains(document.activeElement) ? document.activeElement.id : null;
    var typed = {};
    Array.prototype.forEach.call(live.querySelectorAll("input[id], textarea[id], select[id]"), function (el) {
      if (el.type !== "hidden") { typed[el.id] = el.value; }
    });
    live.innerHTML = event.data;
    Object.keys(typed).forEach(function (id) {
      var el = document.getElementById(id);
      if (el && live.contains(el)) { el.value = typed[id]; }
    });
    if (focused) {
      var again = document.getElementById(focused);
      if (again) { again.focus(); }
    }
    live.setAttribute("data-updated", String(Date.now()));
  });
  source.addEventListener("signed-out", function () {
    source.close();
    window.location.href = "/console/sign-in?next=" + encodeURIComponent(window.location.pathname + window.location.search);
  });
})();
