"""Fault injection for the production shape: the checker, the set-up, load and the faults.

The tests that use them are ``tests/integration/test_fault_*.py`` (they share the session's
PostgreSQL and Kafka there); ``make soak`` runs ``tests.faults.soak`` for longer.
"""
