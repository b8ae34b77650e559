"""fortio-compatible load generation, laid out as fortio is.

- ``periodic``: the scheduler (closed loop as fortio, and open loop), no HTTP;
- ``http_client``: a minimal keep-alive HTTP/1.1 client on asyncio protocols (uvloop);
- ``stats``: fortio's histogram and percentiles; ``results``: fortio's result JSON;
  ``report``: fortio's text report;
- ``options``: option parsing and validation; ``engine.run(options) -> dict``: one run;
- ``rest``: fortio's REST API on this engine (the embedded mesh's ``fortio`` workload);
- ``remote``: fortio in a cluster through the Kubernetes API; ``envoy_stats``: breaker
  counters from a sidecar's stats.
"""
