"""The resource estimate and its report section at HL-LHC event sizes."""

from __future__ import annotations

import dataclasses

from exatrkx.study.markdown import _resource_section
from exatrkx.study.resources import ASSUMPTIONS, UTILISATION, Basis, estimate

PILEUP_BASIS = Basis(label="option 5, concurrency 1", throughput_eps=0.0458,
                     server_cpu_ms=21950.0, client_cpu_ms=144.7, local_cpu_ms=23330.0,
                     local_throughput_eps=0.0428, machine_cores=2, mean_hits=200026.0)


def test_slow_servers_need_many_and_the_wire_grows_with_the_hits() -> None:
    need = {n.rate_hz: n for n in estimate(PILEUP_BASIS, (100.0,), UTILISATION)}[100.0]
    assert need.servers == 3120  # ceil(100 / (0.0458 * 0.7))
    assert need.network_mbit_s == 100 * 200026 * 20 * 8 / 1e6  # 12 B in + 8 B out per hit


def test_the_section_keeps_the_digits_of_a_slow_rate_and_names_the_event_size() -> None:
    summary = {"resources": {"basis": dataclasses.asdict(PILEUP_BASIS),
                             "utilisation": UTILISATION, "assumptions": list(ASSUMPTIONS),
                             "table": [n.to_dict() for n in estimate(PILEUP_BASIS)]}}
    text = "\n".join(_resource_section(summary))
    assert "0.0458 events/s per server" in text
    assert "0.0428 events/s" in text
    assert "events of 200026 hits on average" in text
    assert "no pileup" not in text
