from typing import ClassVar


class FakeSmsGateway:
    """Records messages instead of sending them; emptied by the sms_outbox fixture."""

    outbox: ClassVar[list[tuple[str, str]]] = []

    def send(self, *, to: str, body: str) -> str:
        self.outbox.append((to, body))
        return f"fake-{len(self.outbox)}"
