"""Registry webhooks: signing, SSRF guard, durable delivery and event announcement."""
