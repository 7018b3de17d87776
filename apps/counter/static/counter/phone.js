// Step 2 suggests the brand and model from the IMEI's first 8 digits (its TAC), asked of the
// server (data-model-url), into fields the clerk left empty or that hold an earlier
// suggestion; the clerk checks them against the box and can type over them.
"use strict";
(function () {
  var form = document.getElementById("phone-form");
  if (!form) return;
  var imei = document.getElementById("id_imei");
  var brand = document.getElementById("id_brand");
  var model = document.getElementById("id_model_name");
  var note = document.getElementById("model-suggestion");
  var modelField = document.getElementById("field-model_name");
  if (modelField) modelField.appendChild(note);  // the hint sits under the model it suggests
  var lastTac = "";

  function fill(field, value) {
    if (field.value === "" || field.dataset.suggested === field.value) {
      field.value = value; field.dataset.suggested = value;
    }
  }

  imei.addEventListener("input", function () {
    var digits = imei.value.replace(/\D/g, "");
    if (digits.length < 8 || digits.slice(0, 8) === lastTac) return;
    lastTac = digits.slice(0, 8);
    fetch(form.dataset.modelUrl + "?" + new URLSearchParams({imei: digits}).toString(), {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (!body.brand) return;
        fill(brand, body.brand); fill(model, body.model_name);
        note.textContent = form.dataset.suggestedText;
      });
  });
})();
