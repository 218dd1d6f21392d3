// The alert desk, kept current: every second ask how many reports await acknowledgement,
// and reload the list when a new one arrived. Without this script the page still works
// (its refresh link); nothing here is needed to act on a report.
(function () {
  "use strict";
  var badge = document.getElementById("new-count");
  if (!badge) { return; }
  var newest = badge.getAttribute("data-newest");
  function ask() {
    fetch(badge.getAttribute("data-poll"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (state) {
        if (state && state.newest && state.newest !== newest) { window.location.reload(); }
      })
      .catch(function () { /* offline for a moment: ask again next second */ })
      .finally(function () { window.setTimeout(ask, 1000); });
  }
  window.setTimeout(ask, 1000);
})();
