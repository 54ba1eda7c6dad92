"""`evergreen register-webhooks --klaviyo --shop S`: the shop's Klaviyo system webhook, pointed at the stack.

Through Klaviyo's Webhooks API (`GET /api/webhook-topics`, `GET/POST /api/webhooks`, `PATCH
/api/webhooks/{id}`) it creates, or brings up to date, one webhook named `Evergreen <shop>`: the stack's
Klaviyo URL with `?shop=`, every engagement topic Evergreen handles that the account offers, and the
shop's stored `webhook_secret`. Klaviyo reads back only the URL's origin and never the secret, so a webhook
with the right name, topics and origin is left alone. Where the account may not use the API (403/404: system
webhooks are for Klaviyo CDP customers and app partners), it says that the engagement poll covers the shop and
exits 0, with the steps for Klaviyo's UI for a CDP account; a key Klaviyo rejects (401) gets those steps and
exit code 4.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import httpx

from evergreen.klaviyo.webhooks import TOPIC_KINDS
from evergreen.settings import Settings
from evergreen_cli.activity import working
from evergreen_cli.aws_stack import stack_outputs
from evergreen_cli.main import CliError, command, render_table
from evergreen_cli.targets import local_api_url, use_target

JSON_API = "application/vnd.api+json"
EXIT_USE_THE_UI = 4
Action = Literal["create", "update", "keep"]
UI_TOPICS = (
    "event:klaviyo.opened_email",
    "event:klaviyo.clicked_email",
    "event:klaviyo.bounced_email",
    "event:klaviyo.marked_email_as_spam",
    "event:klaviyo.unsubscribed_from_email_marketing",
    "event:klaviyo.clicked_sms",
    "event:klaviyo.unsubscribed_from_sms_marketing",
)
"""The topics to tick in Klaviyo's UI (Evergreen also understands older names of the unsubscribe topics)."""


@dataclass(frozen=True)
class KlaviyoTarget:
    """Where and how to register: the API, the key, the webhook's URL and secret."""

    base_url: str
    revision: str
    api_key: str
    webhook_url: str
    secret: str
    secret_id: str


def webhook_name(shop: str) -> str:
    return f"Evergreen {shop}"


def _with_shop(url: str, shop: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode({'shop': shop})}"


def target_of(args: argparse.Namespace) -> KlaviyoTarget:
    environment = use_target(args.aws, args.stack, args.region)
    url = args.url
    if args.aws:
        outputs = stack_outputs(args.stack, args.region)
        if "KlaviyoSecretsArn" in outputs:
            environment["KLAVIYO_SECRETS_ID"] = outputs["KlaviyoSecretsArn"]
        url = url or outputs.get("KlaviyoWebhookUrl")
        if not url:
            raise CliError(f"stack {args.stack!r} has no output KlaviyoWebhookUrl: deploy it first (`make deploy`)")
    settings = Settings.from_env({**os.environ, **environment})
    return klaviyo_target(settings, args.shop, url or f"{local_api_url()}/webhooks/klaviyo")


def klaviyo_target(settings: Settings, shop: str, url: str) -> KlaviyoTarget:
    """The shop's Klaviyo account (its stored key and webhook secret) and its webhook URL, `url?shop=<shop>`."""
    from evergreen.wiring import Edges  # noqa: PLC0415

    account = Edges(settings).secrets.klaviyo_account(shop)
    fix = f"store the shop's api_key and webhook_secret in secret {settings.klaviyo_secrets_id} (README, Secrets)"
    if account is None or not account.api_key:
        raise CliError(f"no Klaviyo API key for {shop}: {fix}")
    if not account.webhook_secrets:
        raise CliError(f"no Klaviyo webhook_secret for {shop}: {fix}")
    return KlaviyoTarget(
        base_url=settings.klaviyo_base_url.rstrip("/"),
        revision=settings.klaviyo_revision,
        api_key=account.api_key,
        webhook_url=_with_shop(url, shop),
        secret=account.webhook_secrets[0],
        secret_id=settings.klaviyo_secrets_id,
    )


class WebhooksUnavailable(Exception):
    """Klaviyo will not let this key manage system webhooks (the status it answered)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class KlaviyoWebhooks:
    """The few Webhooks API calls, with the headers Klaviyo's spec requires."""

    def __init__(self, target: KlaviyoTarget, http: httpx.Client | None = None) -> None:
        self._target = target
        self._http = http or httpx.Client(timeout=15)
        self._headers = {
            "Authorization": f"Klaviyo-API-Key {target.api_key}",
            "revision": target.revision,
            "Accept": JSON_API,
        }

    def _call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        headers = dict(self._headers)
        if "json" in options:
            headers["Content-Type"] = JSON_API
        response = self._http.request(method, f"{self._target.base_url}{path}", headers=headers, **options)
        if response.status_code in (401, 403, 404):
            raise WebhooksUnavailable(response.status_code)
        if not response.is_success:
            raise CliError(f"Klaviyo answered {response.status_code} to {method} {path}: try again later")
        body: dict[str, Any] = response.json()
        return body

    @property
    def webhook_url(self) -> str:
        return self._target.webhook_url

    def topics(self) -> set[str]:
        return {str(item["id"]) for item in self._call("GET", "/api/webhook-topics").get("data", [])}

    def webhooks(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._call("GET", "/api/webhooks", params={"include": "webhook-topics"}).get(
            "data", []
        )
        return data

    def create(self, name: str, topics: list[str]) -> None:
        body = {
            "data": {
                "type": "webhook",
                "attributes": {
                    "name": name,
                    "description": "Email and SMS engagement for Evergreen's segments",
                    "endpoint_url": self._target.webhook_url,
                    "secret_key": self._target.secret,
                },
                "relationships": {"webhook-topics": {"data": _topic_refs(topics)}},
            }
        }
        self._call("POST", "/api/webhooks", json=body)

    def update(self, webhook_id: str, topics: list[str]) -> None:
        body = {
            "data": {
                "type": "webhook",
                "id": webhook_id,
                "attributes": {
                    "endpoint_url": self._target.webhook_url,
                    "secret_key": self._target.secret,
                    "enabled": True,
                },
                "relationships": {"webhook-topics": {"data": _topic_refs(topics)}},
            }
        }
        self._call("PATCH", f"/api/webhooks/{webhook_id}", json=body)


def _topic_refs(topics: list[str]) -> list[dict[str, str]]:
    return [{"type": "webhook-topic", "id": topic} for topic in topics]


def _topics_of(webhook: dict[str, Any]) -> set[str]:
    related = (webhook.get("relationships") or {}).get("webhook-topics") or {}
    return {str(item["id"]) for item in related.get("data") or [] if isinstance(item, dict)}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def decide(existing: list[dict[str, Any]], name: str, url: str, topics: list[str]) -> tuple[Action, str | None, str]:
    """(action, webhook id, why): "create", "update" or "keep" the webhook named `name`."""
    mine = [hook for hook in existing if (hook.get("attributes") or {}).get("name") == name]
    if not mine:
        return "create", None, "no webhook named so"
    hook = mine[0]
    attributes = hook.get("attributes") or {}
    shown_url = str(attributes.get("endpoint_url") or "")
    differences = []
    if _topics_of(hook) != set(topics):
        differences.append("topics")
    if not (url == shown_url or (shown_url and url.startswith(shown_url)) or _origin(url) == shown_url):
        differences.append("URL")
    if attributes.get("enabled") is False:
        differences.append("disabled")
    if differences:
        return "update", str(hook["id"]), ", ".join(differences) + " differed"
    return "keep", str(hook["id"]), "name, topics and URL match"


def engagement_topics() -> list[str]:
    """The Klaviyo webhook topics Evergreen acts on (engagement events), sorted."""
    return sorted(topic for topic in TOPIC_KINDS if topic.startswith("event:klaviyo."))


@dataclass(frozen=True)
class Review:
    """What the shop's webhook needs: the action that would make it right, and why."""

    name: str
    action: Action
    webhook_id: str | None
    why: str
    topics: list[str]
    """The topics it needs: those Evergreen acts on that the account offers."""
    shown_url: str | None = None
    """The webhook's address as Klaviyo shows it (only its origin, once saved)."""


def review(api: KlaviyoWebhooks, shop: str) -> Review:
    """Compare the account's webhooks with what the shop needs (reads only; raises WebhooksUnavailable)."""
    topics = sorted(set(engagement_topics()) & api.topics())
    if not topics:
        raise CliError("the Klaviyo account offers none of the engagement topics Evergreen handles")
    name = webhook_name(shop)
    existing = api.webhooks()
    action, webhook_id, why = decide(existing, name, api.webhook_url, topics)
    shown = [(hook.get("attributes") or {}).get("endpoint_url") for hook in existing if hook.get("id") == webhook_id]
    return Review(name, action, webhook_id, why, topics, str(shown[0]) if shown and shown[0] else None)


def ui_steps(target: KlaviyoTarget, shop: str, topics: list[str], status: int) -> str:
    why = {
        401: "Klaviyo rejected the API key (401)",
        403: "the API key lacks the webhooks:read and webhooks:write scopes, or the account may not use the "
        "Webhooks API (403)",
        404: "the account has no Webhooks API (404)",
    }.get(status, f"Klaviyo answered {status}")
    listed = "\n".join(f"     - {topic}" for topic in topics)
    return f"""{why}. Either give the key the scopes webhooks:read and webhooks:write (Settings > API keys) and
run this again, or create the webhook in Klaviyo's UI (system webhooks are managed in the UI on Klaviyo
CDP accounts):
  1. In Klaviyo, open Settings > Webhooks and choose Create webhook.
  2. Name: {webhook_name(shop)}
  3. Endpoint URL: {target.webhook_url}
  4. Topics:
{listed}
  5. Secret key: the shop's webhook_secret from secret {target.secret_id}
     (aws secretsmanager get-secret-value --secret-id {target.secret_id}); at least 16 characters.
  6. Save, and check with {command("send-webhook --klaviyo")} locally or {command("doctor --aws")}."""


def poll_covers(shop: str, status: int) -> str:
    """What an account without system webhooks has instead: the engagement poll (on by default)."""
    return (
        f"This Klaviyo account may not use system webhooks ({status}): Klaviyo offers them only to Klaviyo CDP "
        f"customers and app partners.\n"
        f"Nothing to do: the engagement poll covers {shop}. Every 5 minutes (EngagementPollSchedule) it reads the "
        "account's opens, clicks, bounces, spam complaints and unsubscribes from Klaviyo's Events API and applies "
        f"them as a webhook would; {command('doctor')} shows when it last completed and how far behind it is.\n"
        "Optional, on a Klaviyo CDP account only, for engagement within seconds:"
    )


def register_klaviyo(args: argparse.Namespace) -> int:
    target = target_of(args)
    api = KlaviyoWebhooks(target)
    try:
        with working(f"reading {args.shop}'s Klaviyo webhooks"):
            found = review(api, args.shop)
            if not args.dry_run:
                if found.action == "create":
                    api.create(found.name, found.topics)
                elif found.action == "update" and found.webhook_id:
                    api.update(found.webhook_id, found.topics)
    except WebhooksUnavailable as unavailable:
        if unavailable.status in (403, 404):
            print(poll_covers(args.shop, unavailable.status))
            print()
            print(ui_steps(target, args.shop, list(UI_TOPICS), unavailable.status))
            return 0
        print(ui_steps(target, args.shop, list(UI_TOPICS), unavailable.status))
        return EXIT_USE_THE_UI
    shown = {"create": "created", "update": "changed", "keep": "left alone"}[found.action]
    if args.dry_run and found.action != "keep":
        shown = f"would be {shown}"
    print(render_table([[shown, found.name, target.webhook_url, found.why]], ["result", "webhook", "address", "why"]))
    print(f"topics: {', '.join(found.topics)}")
    return 0
