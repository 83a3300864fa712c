"""routerbot: governed, cost-visible LLM access from Slack, Discord and the terminal."""
