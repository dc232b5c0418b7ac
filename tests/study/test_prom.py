"""Parsing Triton's Prometheus metrics and the per-model averages of a window."""

from __future__ import annotations

import http.server
import math
import threading
from collections.abc import Iterator

import pytest

from exatrkx.study.prom import GaugeSampler, model_usage, parse_metrics

BEFORE = """\
# HELP nv_inference_request_success Number of successful inference requests
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="exatrkx_pipeline",version="1"} 5
nv_inference_request_success{model="embed",version="1"} 0
# TYPE nv_inference_exec_count counter
nv_inference_exec_count{model="exatrkx_pipeline",version="1"} 5
nv_inference_queue_duration_us{model="exatrkx_pipeline",version="1"} 373
nv_inference_request_duration_us{model="exatrkx_pipeline",version="1"} 110956
nv_inference_compute_infer_duration_us{model="exatrkx_pipeline",version="1"} 107650
nv_inference_failure{model="x",reason="OTHER \\"odd\\"",version="1"} 0
nv_cpu_utilization 0.25
nv_gpu_power_limit{gpu_uuid="GPU-1"} +Inf 1700000000
"""


def _after() -> str:
    return (BEFORE.replace('"1"} 5', '"1"} 15')
            .replace("} 373", "} 20373").replace("} 110956", "} 1110956")
            .replace("} 107650", "} 907650"))


def test_samples_and_labels_are_read() -> None:
    m = parse_metrics(BEFORE)
    assert m.get("nv_inference_request_success", model="exatrkx_pipeline") == 5
    assert m.get("nv_cpu_utilization") == 0.25
    assert m.get("nv_gpu_power_limit") == math.inf
    assert m.get("absent") == 0.0
    assert m.per_model("nv_inference_exec_count") == {"exatrkx_pipeline": 5.0}
    assert m.get("nv_inference_failure", reason='OTHER "odd"') == 0.0
    assert "nv_cpu_utilization" in m.names()
    with pytest.raises(ValueError, match="line 1"):
        parse_metrics("not a sample line at all {")


def test_model_usage_is_the_window_average() -> None:
    usage = model_usage(parse_metrics(BEFORE), parse_metrics(_after()), wall_s=2.0)
    assert set(usage) == {"exatrkx_pipeline"}  # embed served nothing
    u = usage["exatrkx_pipeline"]
    assert (u.requests, u.executions) == (10, 10)
    assert u.queue_us_per_exec == pytest.approx(2000.0)
    assert u.request_us == pytest.approx(100_000.0)
    assert u.compute_infer_us == pytest.approx(80_000.0)
    assert u.busy_fraction == pytest.approx(0.4)
    assert u.to_dict()["requests"] == 10


@pytest.fixture
def metrics_url() -> Iterator[str]:
    body = BEFORE.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


def test_gauges_are_sampled_from_the_endpoint(metrics_url: str) -> None:
    import time

    with GaugeSampler(metrics_url, interval_s=0.02) as sampler:
        time.sleep(0.15)
    summary = sampler.summary()
    assert summary["nv_cpu_utilization"]["mean"] == pytest.approx(0.25)
    assert summary["nv_cpu_utilization"]["samples"] >= 2
    assert sampler.errors == 0
