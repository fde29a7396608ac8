"""Benchmarks of the hub, run with `python -m bench` (`make bench`), never by the test suite.

One run measures, on one RabbitMQ node started for it: the raw broker relay ceiling
(`bench.relay`), then the hub end to end as a real `hub run` process fed through its DVCQG
facade and delivering to the DVCQG simulator (`bench.e2e`): throughput, latency at a fixed
offered load, and memory over a long stream. Results go to `var/bench/results.json`.

Nothing in this package may be imported by the hub, and nothing here may change the hub's
behaviour: it only configures, starts, feeds and watches it from outside.
"""
