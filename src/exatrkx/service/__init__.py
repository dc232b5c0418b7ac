"""The client side of the service: runners for options 0-5, transports, balancing.

- :mod:`exatrkx.service.runner`: :func:`make_runner` and :class:`Runner` (any option);
- :mod:`exatrkx.service.transport`: one connection (gRPC, HTTP, shared memory), retries;
- :mod:`exatrkx.service.remote`: stages run by Triton models;
- :mod:`exatrkx.service.stats`: Triton's per-model statistics;
- :mod:`exatrkx.service.balance`: several servers behind one runner;
- :mod:`exatrkx.service.reconstruct`: the ``exatrkx reconstruct`` application.
"""
