// The one script of the collector: refresh the dashboard's live list every 5 seconds.
(function () {
  "use strict";
  function refresh() {
    fetch("/dashboard/live", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var now = document.getElementById("live");
        var box = document.createElement("div");
        box.innerHTML = html;
        var next = box.querySelector("#live");
        if (now && next) now.replaceWith(next);
      })
      .catch(function () { /* collector restarting: try again next tick */ });
  }
  setInterval(refresh, 5000);
})();
