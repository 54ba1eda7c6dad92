"""Developer tooling around Evergreen: the local stack, the Klaviyo sandbox and the `evergreen` CLI."""
