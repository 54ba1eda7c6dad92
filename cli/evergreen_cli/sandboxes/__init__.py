"""Local stand-ins for Klaviyo's API and Shopify's Admin GraphQL API, each checked against its owner's contract."""
