"""Measurement and development commands: model and trainer profiles, the scene benchmark, the
server load test, mutation testing. Each module has a ``main(argv)`` that a script in
``scripts/`` wraps; none of them is imported by the library."""
