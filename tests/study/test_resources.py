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


def test_small_rates_in_the_tables_keep_two_significant_digits() -> None:
    from exatrkx.study.markdown import _f
    from exatrkx.study.network import network_section

    row = {"option": 5, "delay_ms": 0.0, "bandwidth_gbps": 1.0, "round_trips": 1.0,
           "latency_mean_ms": 22515.6, "model_ms": 22145.4, "model_error_ms": 370.2,
           "throughput_eps": 0.0435, "in_flight": 1, "bytes_up_per_event": 2400502.0,
           "bytes_down_per_event": 1600378.0, "identical_labels": True}
    table = network_section([row], _f)[-2]
    assert "| 0.043 |" in table and "| 2400.50 |" in table
    assert [_f(0.0), _f(0.004), _f(0.06), _f(0.0051, 4)] == ["0.00", "0.004", "0.06", "0.0051"]
