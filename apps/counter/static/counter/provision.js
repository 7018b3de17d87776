// The counter's page turns to "Enrolled" when the phone enrolls, without a reload. The status
// address and the word to show come from the page (data-status-url, data-enrolled-text).
// "Full screen, bright" shows the code alone on a white screen, as large as it fits, and
// keeps the screen awake while it is shown; a tap (or Escape) closes it.
"use strict";
(function () {
  var qr = document.getElementById("provisioning-qr");
  var bright = document.getElementById("qr-bright");
  var lock = null;

  function close() {
    if (!qr || !qr.classList.contains("bright")) return;
    qr.classList.remove("bright");
    if (document.fullscreenElement) document.exitFullscreen().catch(function () {});
    if (lock) { lock.release().catch(function () {}); lock = null; }
  }

  if (qr && bright) {
    bright.addEventListener("click", function () {
      qr.classList.add("bright");
      if (qr.requestFullscreen) qr.requestFullscreen().catch(function () {});
      if (navigator.wakeLock) navigator.wakeLock.request("screen").then(function (l) { lock = l; }).catch(function () {});
    });
    qr.addEventListener("click", close);
    document.addEventListener("keydown", function (e) { if (e.key === "Escape") close(); });
    document.addEventListener("fullscreenchange", function () { if (!document.fullscreenElement) close(); });
  }

  var el = document.getElementById("device-status");
  if (!el || el.classList.contains("enrolled")) return;
  var timer = setInterval(function () {
    fetch(el.dataset.statusUrl, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (body) {
      if (body.device === "enrolled") {
        el.textContent = el.dataset.enrolledText; el.className = "status enrolled"; clearInterval(timer);
        document.querySelectorAll("#provisioning-qr, #show-code, #qr-bright").forEach(function (n) { n.remove(); });
      }
    });
  }, 2000);
})();
