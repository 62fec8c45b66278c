// The storefront page's behaviour. The page carries its data in data-* attributes and
// has no inline script, so it runs under Content-Security-Policy: script-src 'self'.
"use strict";

// crypto.randomUUID() exists only on HTTPS and localhost; getRandomValues everywhere.
function newKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)),
                    b => b.toString(16).padStart(2, "0")).join("");
}

async function buy(row) {
  const sku = row.dataset.sku;
  const qty = parseInt(row.querySelector("input.qty").value, 10);
  const msg = document.getElementById("message");
  const resp = await fetch("/api/v1/checkout", {
    method: "POST",
    headers: {"Content-Type": "application/json", "Idempotency-Key": newKey()},
    body: JSON.stringify({
      lines: [{sku, qty}],
      customer: {email: document.getElementById("email").value},
      gateway: document.getElementById("gateway").value,
    }),
  });
  const body = await resp.json();
  if (!resp.ok) { msg.textContent = body.error.message; return; }
  if (body.payment.redirect_url) { window.location = body.payment.redirect_url; return; }
  msg.textContent = "Order " + body.number + ": " + body.status;
}

for (const button of document.querySelectorAll("#products button.buy")) {
  button.addEventListener("click", () => buy(button.closest("li")));
}
