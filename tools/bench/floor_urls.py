"""The product's URLs behind one more: ``/bench/floor``, an empty DRF view (no key, no scope,
no throttle, an empty JSON body) through the same middleware and gunicorn. What it costs per
request is the floor under any lender API call on this machine: bench-lender-api measures it
in the same run as the calls."""

from typing import Any

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as product

FLOOR = "/bench/floor"


class FloorApi(APIView):
    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()

    def get(self, request: Request) -> Response:
        body: dict[str, Any] = {}
        return Response(body)


urlpatterns = [path(FLOOR.lstrip("/"), FloorApi.as_view()), *product]
