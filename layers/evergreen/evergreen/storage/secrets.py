"""Per-shop secrets from Secrets Manager, cached by Powertools parameters.

Shopify secret: {"<shop>.myshopify.com": "<signing secret>", "*": "<app-wide secret>"}.
Klaviyo secret: {"<shop>" or "*": {"api_key": ..., "webhook_secret": ..., "account_id": ...}}.
A missing secret or entry yields None, and callers fail closed.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from pydantic import BaseModel, ConfigDict

WILDCARD = "*"


class KlaviyoAccount(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    api_key: str | None = None
    webhook_secret: str | None = None
    account_id: str | None = None


class SecretNotFound(Exception):
    """The secret itself does not exist."""


class ShopSecrets:
    """Reads the two secrets once per cache period and answers per shop."""

    def __init__(self, provider: SecretsProvider, shopify_secret_id: str, klaviyo_secret_id: str, max_age: int) -> None:
        self._provider = provider
        self._shopify_id = shopify_secret_id
        self._klaviyo_id = klaviyo_secret_id
        self._max_age = max_age

    def _document(self, secret_id: str) -> dict[str, Any]:
        try:
            value = self._provider.get(secret_id, max_age=self._max_age, transform="json")
        except Exception as error:
            if "ResourceNotFoundException" in repr(error) or "not find" in str(error).lower():
                return {}
            raise
        return value if isinstance(value, dict) else {}

    def shopify_webhook_secret(self, shop: str) -> str | None:
        document = self._document(self._shopify_id)
        secret = document.get(shop) or document.get(WILDCARD)
        return secret if isinstance(secret, str) and secret else None

    def klaviyo_accounts(self) -> dict[str, KlaviyoAccount]:
        """Every configured Klaviyo account by shop ("*" for the default)."""
        document = self._document(self._klaviyo_id)
        return {
            shop: KlaviyoAccount.model_validate(entry) for shop, entry in document.items() if isinstance(entry, dict)
        }

    def klaviyo_account(self, shop: str) -> KlaviyoAccount | None:
        accounts = self.klaviyo_accounts()
        return accounts.get(shop) or accounts.get(WILDCARD)
