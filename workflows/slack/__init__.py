"""Slack: the message that follows each request of a rule with `notify.slack` (Block Kit,
posted then kept up to date by a durable updater), and the Web API calls behind it."""
