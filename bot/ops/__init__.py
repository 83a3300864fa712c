"""Operator commands on stdout: spend reports, ledger exports, reconciliation with the provider.

They read the same core (its storage ports, its spend texts and key handling) as the chat
front-ends; ``bot.ops.cli`` wires them into ``routerbot …``.
"""
