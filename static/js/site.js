// Behaviour shared by our pages, kept out of the HTML so the CSP can forbid inline script
// (config/settings/base.py). Listeners are delegated, so a page opts in by markup alone.
"use strict";
// <select data-autosubmit>: choosing an option submits its form (a <noscript> button does
// it without JavaScript).
document.addEventListener("change", function (event) {
  var select = event.target;
  if (select.matches && select.matches("select[data-autosubmit]") && select.form) {
    select.form.submit();
  }
});
// <button data-print>: print the page.
document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest("[data-print]");
  if (button) {
    window.print();
  }
});
