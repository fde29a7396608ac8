"""The subscriber side of webhook delivery: a loopback receiver for tests and demos."""
