// The back office's message text page: as the admin types, ask the server for the preview
// (the same functions every send uses) and show it. Kept out of the HTML for the CSP.
"use strict";
(function () {
  var form = document.getElementById("message-text-form");
  if (!form) {
    return;
  }
  var text = form.elements.text;
  var token = form.elements.csrfmiddlewaretoken.value;
  var asked = 0;
  var timer = null;

  function put(selector, value) {
    var element = document.querySelector(selector);
    if (element) {
      element.textContent = value;
    }
  }

  function show(preview) {
    put("#preview-text", preview.text);
    put('[data-count="encoding"]', preview.count.encoding);
    put('[data-count="characters"]', preview.count.characters);
    put('[data-count="segments"]', preview.count.segments);
    put('[data-count="longest"]', preview.longest ? preview.longest.segments : "-");
    put("#preview-outside", preview.count.outside_gsm7.length
      ? form.dataset.outsideLabel + ": " + preview.count.outside_gsm7.join(" ") : "");
    var list = document.getElementById("preview-errors");
    list.replaceChildren();
    preview.errors.forEach(function (message) {
      var item = document.createElement("li");
      item.textContent = message;
      list.appendChild(item);
    });
    form.dataset.previewed = String(asked);
  }

  function ask() {
    var mine = ++asked;
    var body = new FormData();
    body.append("text", text.value);
    fetch(form.dataset.previewUrl, {
      method: "POST",
      body: body,
      headers: {"X-CSRFToken": token},
      credentials: "same-origin"
    }).then(function (answer) {
      return answer.json();
    }).then(function (preview) {
      if (mine === asked) {  // an older answer arriving late is dropped
        show(preview);
      }
    });
  }

  text.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(ask, 200);
  });
})();
