from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class BaseModel(models.Model):
    """Every domain model's base: an indexed creation time and an update time."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class TaskOutbox(models.Model):
    """A task asked for by a transaction, kept until the broker has taken it.

    Written in the caller's transaction (``apps.core.outbox.task_enqueue_on_commit``)
    and deleted once the task is sent after commit; a row left behind (the broker was
    down) is sent by the minutely relay. The tasks are idempotent, so one sent twice
    (the relay racing a slow first send) does no harm.
    """

    task = models.CharField(max_length=100)
    kwargs = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["created_at"], name="task_outbox_created")]

    def __str__(self) -> str:
        return f"{self.task} {self.kwargs}"


class IdempotencyRecord(models.Model):
    """The answer an API gave to a POST with an ``Idempotency-Key``, kept to answer a repeat.

    ``scope`` is whose keys these are (``lender:<id>`` for the lender API), so two callers'
    keys never meet; ``fingerprint`` is the SHA-256 of the method, the path and the body as
    parsed, so the same key with another request is told apart (409). Written once, after
    the answer, under the key's advisory lock (``apps.core.api.idempotency``).
    tests/core/test_api_idempotency.py.
    """

    scope = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField(encoder=DjangoJSONEncoder, null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_scope_key_unique")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"
