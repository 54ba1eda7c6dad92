"""Shopify ingestion core: webhook signatures, payload models and topic translation (pure).

Payloads are modelled on Admin API version `evergreen.settings.SHOPIFY_API_VERSION`,
and older field sets still parse.
"""

from evergreen.settings import SHOPIFY_API_VERSION
from evergreen.shopify.hmac import sign_shopify_body, verify_shopify_hmac
from evergreen.shopify.topics import (
    COMPLIANCE_TOPICS,
    SUBSCRIPTION_TOPICS,
    SUPPORTED_TOPICS,
    MalformedPayload,
    UnknownTopic,
    canonical_topic,
    translate,
)

__all__ = [
    "COMPLIANCE_TOPICS",
    "SHOPIFY_API_VERSION",
    "SUBSCRIPTION_TOPICS",
    "SUPPORTED_TOPICS",
    "MalformedPayload",
    "UnknownTopic",
    "canonical_topic",
    "sign_shopify_body",
    "translate",
    "verify_shopify_hmac",
]
