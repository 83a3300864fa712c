"""A chat turn in three steps: prepare (read and admit), run (stream), record (the ledger)."""
