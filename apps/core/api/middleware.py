"""Refuses an API request whose body is too large, before anything reads it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.views import APIView

from apps.core.api.exception_handler import error_body
from apps.core.errors import BodyTooLarge


class ApiBodySizeMiddleware:
    """A request to any DRF view declaring a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` gets
    413 in the API's error shape, answered from the Content-Length header alone.

    Django enforces that limit only when the body is read (``request.body``, which DRF's
    parsing reads whole), raising ``RequestDataTooBig`` inside the view: a 500 from every
    endpoint that parses JSON, after the server had taken the request. Here it is checked
    before the view runs, for every API view, whatever its parsers or credentials. A view
    with ``body_size_checked_by_view = True`` refuses a smaller limit itself in the methods
    it handles, as early and in the same shape, to audit the refusal (the webhook's
    PAYMENTS_WEBHOOK_MAX_BYTES); other methods get the 413 here. A
    request without a Content-Length has an empty body under WSGI.
    tests/core/test_api_body_size.py walks every API endpoint, those views included.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        view_class = getattr(view_func, "cls", None)  # set by APIView.as_view()
        limit: int | None = settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # None: Django's "no limit"
        if limit is None or not (isinstance(view_class, type) and issubclass(view_class, APIView)):
            return None
        handled = hasattr(view_class, request.method.lower()) if request.method else False
        if handled and getattr(view_class, "body_size_checked_by_view", False):
            return None
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:  # Django then reads no body at all
            return None
        if declared <= limit:
            return None
        error = BodyTooLarge(limit=limit)
        return JsonResponse(
            error_body(error.code, error.message, error.extra), status=error.http_status
        )
