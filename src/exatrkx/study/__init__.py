"""The timing study: every service option over real events against a real Triton server,
with Triton's own floor, transports, concurrency, server settings, perf_analyzer and a
resource estimate; writes a Markdown report with plots and raw timings.

Measuring:

- :mod:`exatrkx.study.config`: :class:`StudyConfig` and the parsing of its lists;
- :mod:`exatrkx.study.runner`: :func:`run_study`, the phases in order;
- :mod:`exatrkx.study.phases`: reference labels, the main run, throughput points,
  perf_analyzer;
- :mod:`exatrkx.study.servers`, :mod:`exatrkx.study.sampling`, :mod:`exatrkx.study.interrupt`:
  the server under test, its Prometheus metrics, clean stops on signals;
- :mod:`exatrkx.study.network`, :mod:`exatrkx.study.scaleout`: network-delay and multi-server
  scans; :mod:`exatrkx.study.netem`: the delay proxy;
- :mod:`exatrkx.study.perf`, :mod:`exatrkx.study.prom`, :mod:`exatrkx.study.loadtest`:
  perf_analyzer, Triton's metrics, load and soak checks;
- :mod:`exatrkx.study.measure`: the weights and events to time.

Reporting: :mod:`exatrkx.study.results` (what was measured), :mod:`exatrkx.study.analysis`
(JSON summary), :mod:`exatrkx.study.plots`, :mod:`exatrkx.study.markdown`,
:mod:`exatrkx.study.report` (files), :mod:`exatrkx.study.resources` (servers and cores an
event rate needs).
"""

from __future__ import annotations

from exatrkx.study.config import StudyConfig, quick_config
from exatrkx.study.runner import StudyResult, run_study

__all__ = ["StudyConfig", "StudyResult", "quick_config", "run_study"]
