"""Everything Evergreen says to and hears from Klaviyo.

- `requests`: pure builders of Klaviyo API calls (no I/O).
- `errors`: what a Klaviyo call can fail with (the use cases catch these; no I/O).
- `client`: the HTTP transport: auth headers, per-endpoint rate limits, 429 back-off, 5xx retries.
- `pusher`: turns a batch of `SegmentChange` into Klaviyo calls and reports per-change failures.
- `webhooks`: pure signature check and parsing of Klaviyo system webhooks into engagement facts.
"""
