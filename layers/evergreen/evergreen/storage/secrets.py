"""Per-shop secrets from Secrets Manager, cached by Powertools parameters.

Shopify secret: {"<shop>.myshopify.com": "<signing secret>" | ["<current>", "<previous>"], "*": ...}.
Klaviyo secret: {"<shop>" or "*": {"api_key", "webhook_secret" (a string or a list), "previous_webhook_secret",
"account_id"}}.

Tenant rule: a shop's own entry is the only one that applies to it; "*" applies only to shops with no entry
of their own. A secret listed twice (current and previous) verifies during a rotation. A missing secret or
entry yields nothing, and callers fail closed.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from evergreen.service.ports import KlaviyoAccount, entry_for, secrets_of


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

    def shopify_webhook_secrets(self, shop: str) -> tuple[str, ...]:
        """The secrets that may sign `shop`'s Shopify deliveries (empty: refuse them all)."""
        return secrets_of(entry_for(self._document(self._shopify_id), shop))

    def klaviyo_accounts(self) -> dict[str, KlaviyoAccount]:
        """Every configured Klaviyo account by shop ("*" for the default)."""
        document = self._document(self._klaviyo_id)
        return {
            shop: KlaviyoAccount.model_validate(entry) for shop, entry in document.items() if isinstance(entry, dict)
        }

    def klaviyo_account(self, shop: str) -> KlaviyoAccount | None:
        return entry_for(self.klaviyo_accounts(), shop)
