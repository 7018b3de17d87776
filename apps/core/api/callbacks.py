"""The set-up every address an outside system calls shares (a provider's callback, an
aggregator's alert): no session and no key (the caller's signature, which the view checks
over the raw body, is its proof), the webhooks' rate limit, and the body left for the view to
read within its limit (``apps.core.api.body.body_read``)."""

from __future__ import annotations

from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from apps.core.api.throttling import ScopedRateThrottle


class ProviderCallbackApi(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (ScopedRateThrottle,)
    throttle_scope = "webhooks"
    parser_classes = ()
    body_size_checked_by_view = True
