"""The timing study: every service option over real events against a real Triton server,
with Triton's own floor, transports, concurrency, server settings, perf_analyzer and a
resource estimate; writes a Markdown report with plots and raw timings.

- :mod:`exatrkx.study.config`: :class:`StudyConfig` and the parsing of its lists;
- :mod:`exatrkx.study.runner`: the measurements (:func:`run_study`);
- :mod:`exatrkx.study.report`: JSON summary, ``report.md``, plots, ``timings.csv``;
- :mod:`exatrkx.study.resources`: servers and cores an event rate needs;
- :mod:`exatrkx.study.measure`: CPU accounting, weights and events to time.
"""

from __future__ import annotations

from exatrkx.study.config import StudyConfig, quick_config
from exatrkx.study.runner import StudyResult, run_study

__all__ = ["StudyConfig", "StudyResult", "quick_config", "run_study"]
