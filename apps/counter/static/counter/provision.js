// The counter's page turns to "Enrolled" when the phone enrolls, without a reload. The status
// address and the word to show come from the page (data-status-url, data-enrolled-text).
"use strict";
(function () {
  var el = document.getElementById("device-status");
  if (!el || el.classList.contains("enrolled")) return;
  var timer = setInterval(function () {
    fetch(el.dataset.statusUrl, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (body) {
      if (body.device === "enrolled") {
        el.textContent = el.dataset.enrolledText; el.className = "status enrolled"; clearInterval(timer);
        document.querySelectorAll("#provisioning-qr, #show-code").forEach(function (n) { n.remove(); });
      }
    });
  }, 2000);
})();
