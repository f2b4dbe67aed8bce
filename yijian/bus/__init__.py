"""Event transport: the outbox, the relay, consumers, and the embedded SQL log."""
