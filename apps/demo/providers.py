"""The demo lenders' accounts with the payment providers, as the demo's loopback fakes know them.

``make run`` (tools/run_demo.py) starts the fakes of Daraja and Stripe (``tools.fakes.demo``)
with these accounts, and ``seed_demo`` types the same values into the demo lenders' provider
accounts, as a lender's admin types theirs in the back office. They open nothing but the fakes.
The passkey is the one Safaricom publishes for its sandbox's test paybill.
"""

# Demo Lender Kenya takes M-Pesa on the sandbox's test paybill
MPESA_LENDER = "demo-ke"
MPESA_SHORTCODE = "174379"
MPESA_CONSUMER_KEY = "demo-daraja-consumer-key"
MPESA_CONSUMER_SECRET = "demo-daraja-consumer-secret"  # noqa: S105  (opens only the fake)
MPESA_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
# the demo customer enters the M-Pesa PIN this many seconds after the prompt reaches the phone
MPESA_PIN_AFTER_SECONDS = 5.0

# Demo Lender México takes cards and OXXO through Stripe
STRIPE_LENDER = "demo-mx"
STRIPE_SECRET_KEY = "sk_test_DemoLenderMexico00000000000000"  # noqa: S105  (the fake's)
STRIPE_WEBHOOK_SECRET = "whsec_DemoLenderMexico0000000000000000"  # noqa: S105  (the fake's)
# the endpoint the lender registers in the Stripe Dashboard (payments-api:provider; a test
# checks the two agree)
STRIPE_WEBHOOK_PATH = f"/api/payments/v1/providers/stripe/{STRIPE_LENDER}/"

# where the fakes listen by default (DEMO_DARAJA_PORT, DEMO_STRIPE_PORT)
DARAJA_PORT = 8701
STRIPE_PORT = 8702
