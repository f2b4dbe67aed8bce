"""The policy simulator: replay a realistic day or month of complaints against a policy file.

It drives the real embedded system on a fake clock: citizens submit through the public API,
simulated staff act through the staff API, and the figures come from the system's own
statistics. A county runs it to see what a change of deadlines would do before adopting it;
the benchmarks use it as their realistic load.
"""
