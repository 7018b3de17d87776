// The phone's status changes within seconds of a payment: ask for it every few seconds.
// The address comes from the page (data-status-url), so this file holds no template code.
"use strict";
(function () {
  var root = document.querySelector("[data-status-url]");
  if (!root) return;
  var url = root.dataset.statusUrl;
  async function refresh() {
    try {
      const answer = await fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"});
      if (!answer.ok) return;
      for (const loan of (await answer.json()).loans) {
        const card = document.querySelector(`section.loan[data-loan="${CSS.escape(loan.reference)}"]`);
        if (!card) continue;
        const status = card.querySelector('[data-testid="phone-status"]');
        status.textContent = loan.phone;
        status.className = `status ${loan.phone_class}`;
        const next = card.querySelector('[data-testid="next-step"]');
        if (next) next.textContent = loan.next;
        // the phone took its new state: the unlock code is no longer needed
        const code = card.querySelector('[data-testid="offline-code"]');
        if (code && !loan.offline_code) code.hidden = true;
        // a payment started here: waiting for the PIN, a voucher, received
        const payment = card.querySelector('[data-testid="payment-status"]');
        if (payment) {
          payment.textContent = loan.payment;
          payment.hidden = !loan.payment;
        }
      }
    } catch (e) { /* offline for a moment: try again at the next tick */ }
  }
  setInterval(refresh, 3000);
})();
