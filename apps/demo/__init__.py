"""The demo's commands: seed the demo data (``seed_demo``) and play the payment provider
(``provider_webhook``). An interface on top of every app; it owns no models."""
