// The plan step quotes live: as the clerk picks a plan or types a down payment, the page asks
// the server's quote (data-quote-url, computed by the schedule code the sale signs with) and
// shows the product's minimum and "12 × KES 1,650.00 · total ... · first due 5 Jan", or the
// refusal the step would give. The page holds no schedule arithmetic of its own.
"use strict";
(function () {
  var form = document.getElementById("plan-form");
  if (!form) return;
  var product = document.getElementById("id_product");
  var down = document.getElementById("id_down_payment");
  var minimum = document.getElementById("plan-minimum");
  var quote = document.getElementById("plan-quote");
  var timer = null, asked = 0;

  function show(body) {
    minimum.textContent = body.minimum || "";
    quote.textContent = body.error || body.quote || "";
    quote.classList.toggle("empty", !(body.error || body.quote));
    quote.classList.toggle("refused", !!body.error);
  }

  function ask() {
    var n = ++asked;
    var params = new URLSearchParams({product: product.value, down_payment: down.value.trim()});
    fetch(form.dataset.quoteUrl + "?" + params.toString(), {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (body) { if (n === asked) show(body); });  // the latest answer wins
  }

  function soon() { clearTimeout(timer); timer = setTimeout(ask, 250); }
  product.addEventListener("change", ask);
  down.addEventListener("input", soon);
})();
