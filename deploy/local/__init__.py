"""Python access to the local servers of ``deploy/local/*.sh``, for the tests and the benchmarks."""
