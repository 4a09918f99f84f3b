"""The Slack edge: events in, service calls, Block Kit out. The core never imports this package."""
