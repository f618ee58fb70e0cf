// hoursync support console: small enhancements; every page works without it.
(function () {
  "use strict";
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain http on another host: the old way, through a selected textarea.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "offscreen";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var buttons = document.querySelectorAll("button[data-copy-from]");
    Array.prototype.forEach.call(buttons, function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var source = document.getElementById(button.getAttribute("data-copy-from"));
        if (!source) { return; }
        var label = button.textContent;
        copyText(source.value || source.textContent).then(function () {
          button.textContent = button.getAttribute("data-copied") || label;
          button.setAttribute("data-state", "copied");
          setTimeout(function () { button.textContent = label; }, 2000);
        }, function () {
          source.focus();
          if (source.select) { source.select(); }
        });
      });
    });
  });
})();
// A running resync's page reloads itself until the run is done (the page
// also has a plain "refresh" link for browsers without script).
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var live = document.querySelector("[data-refresh]");
    if (!live) { return; }
    var seconds = parseInt(live.getAttribute("data-refresh"), 10) || 2;
    setTimeout(function () { window.location.reload(); }, seconds * 1000);
  });
})();
