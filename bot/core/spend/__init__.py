"""Spend: what chats cost (``/costs``), the monthly limits (``/budget``), and their texts."""
