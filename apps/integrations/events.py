from enum import StrEnum


class IntegrationsAction(StrEnum):
    PROVIDER_ACCOUNT_SAVED = "integrations.provider_account.saved"
    PROVIDER_ACCOUNT_RESEALED = "integrations.provider_account.resealed"
    PROVIDER_CALLBACKS_REGISTERED = "integrations.provider_account.callbacks_registered"
