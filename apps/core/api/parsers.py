"""The JSON parser of our APIs."""

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser as DrfJsonParser


class JSONParser(DrfJsonParser):
    """DRF's JSON parser, answering 400 (not 500) for a body nested past Python's recursion
    limit: a body of ten thousand ``[`` is short enough to pass every size limit."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply.") from exc
