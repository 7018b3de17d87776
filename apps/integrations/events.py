from enum import StrEnum


class IntegrationsAction(StrEnum):
    PROVIDER_ACCOUNT_SAVED = "integrations.provider_account.saved"
    PROVIDER_ACCOUNT_RESEALED = "integrations.provider_account.resealed"
    PROVIDER_CALLBACKS_REGISTERED = "integrations.provider_account.callbacks_registered"
    WEBHOOK_ENDPOINT_SAVED = "integrations.webhook_endpoint.saved"
    WEBHOOK_ENDPOINT_DELETED = "integrations.webhook_endpoint.deleted"
    WEBHOOK_SECRET_ROTATED = "integrations.webhook_endpoint.secret_rotated"  # noqa: S105
    WEBHOOK_ENDPOINT_DISABLED = "integrations.webhook_endpoint.disabled"
    WEBHOOK_DELIVERIES_RESENT = "integrations.webhook_deliveries.resent"
