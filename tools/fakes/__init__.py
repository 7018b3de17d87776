"""Loopback stand-ins for the payment providers' HTTP APIs, speaking their documented
requests, answers and errors: the tests run the official clients against them, and
``make run`` starts them so the demo takes "real" payments with no outside service."""
