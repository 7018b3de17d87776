"""The demo lenders' accounts with the payment and messaging providers, as the demo's loopback
fakes know them.

``make run`` (tools/run_demo.py) starts the fakes of Daraja, Stripe, Africa's Talking, WhatsApp
and Twilio (``tools.fakes.demo``) with these accounts, and ``seed_demo`` types the same values
into the demo lenders' provider accounts, as a lender's admin types theirs in the back office.
They open nothing but the fakes. The passkey is the one Safaricom publishes for its sandbox's
test paybill.
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

# Demo Lender Kenya texts its customers through Africa's Talking (SMS from its shortcode, which
# customers can answer) and WhatsApp, in the order push, WhatsApp, SMS
AFRICASTALKING_LENDER = "demo-ke"
AFRICASTALKING_USERNAME = "demolenderkenya"
AFRICASTALKING_API_KEY = "atsk_DemoLenderKenya000000000000000"  # opens only the fake
AFRICASTALKING_SHORTCODE = "21555"
WHATSAPP_LENDER = "demo-ke"
WHATSAPP_PHONE_NUMBER_ID = "105550100200300"
WHATSAPP_BUSINESS_ACCOUNT_ID = "105550100200399"
WHATSAPP_DISPLAY_NUMBER = "254700555100"  # the business's number, as Meta writes it
WHATSAPP_ACCESS_TOKEN = "EAADemoLenderKenya00000000000000"  # noqa: S105  (the fake's)
WHATSAPP_APP_SECRET = "de30de30de30de30de30de30de30de30"  # noqa: S105  (the fake's)
WHATSAPP_VERIFY_TOKEN = "demo-lender-kenya-verify"  # noqa: S105  (the fake's)
# the approved template every message goes as, its text the one body parameter, in the
# product's languages (WhatsApp takes free text only within a day of the customer's message)
WHATSAPP_TEMPLATE = "account_message"
WHATSAPP_TEMPLATE_LANGUAGES = ("en", "es", "zh_CN")
KENYA_CHANNELS = ["push", "whatsapp", "sms"]

# Demo Lender México texts by SMS through Twilio, from its Mexican number
TWILIO_LENDER = "demo-mx"
TWILIO_ACCOUNT_SID = "ACde30de30de30de30de30de30de30de30"
TWILIO_AUTH_TOKEN = "0de30de30de30de30de30de30de30de3"  # noqa: S105  (the fake's)
TWILIO_FROM_NUMBER = "+525550100200"
MEXICO_CHANNELS = ["push", "sms"]

# Demo Lender México calls its late customers (Twilio Voice, the same account) at every stage
# of its ladder, and takes funds alerts from an account-information provider (Belvo, which
# serves Mexico), signed with this Standard Webhooks secret
VOICE_LENDER = "demo-mx"
VOICE_STAGES = "reminder,wallpaper,alarm,block_apps,lock"
VOICE_AGENT_NUMBER = "+525550100299"
FUNDS_LENDER = "demo-mx"
FUNDS_AGGREGATOR = "Belvo"
FUNDS_SECRET = "whsec_RGVtb0xlbmRlck1leGljb0Z1bmRzQWxlcnRz"  # noqa: S105  (the fake's)
# the aggregator raises its alert for the late demo customer this many seconds after seeding
FUNDS_ALERT_AFTER_SECONDS = 20.0

# the messaging fakes report a message delivered this many seconds after they take it
DELIVERED_AFTER_SECONDS = 3.0

# where the fakes listen by default (DEMO_DARAJA_PORT, DEMO_STRIPE_PORT,
# DEMO_AFRICASTALKING_PORT, DEMO_WHATSAPP_PORT, DEMO_TWILIO_PORT, DEMO_AGGREGATOR_PORT)
DARAJA_PORT = 8701
STRIPE_PORT = 8702
AFRICASTALKING_PORT = 8703
WHATSAPP_PORT = 8704
TWILIO_PORT = 8705
AGGREGATOR_PORT = 8706
