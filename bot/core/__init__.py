"""Platform-neutral core: command grammar, ProviderService, pricing and replies."""
