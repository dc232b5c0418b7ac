"""Triton's own load tool, ``perf_analyzer``, against our server.

- :func:`find_perf_analyzer` locates the tool that ``make install`` puts in
  ``.venv/perf_analyzer`` (``scripts/install_perf_analyzer.sh``), with the environment it needs;
- :func:`export_perf_data` writes events as perf_analyzer's JSON input data (``{"data": [{
  "FEATURES": {"content": [...], "shape": [N, 3]}}, ...]}``), optionally with the expected
  outputs (``validation_data``) that perf_analyzer compares byte for byte with every answer;
- :func:`run_perf_analyzer` runs it over a list of concurrencies and returns per-concurrency
  throughput, latency percentiles and the server-side queue/compute breakdown.

perf_analyzer accepts ``validation_data`` only for outputs whose shape the model config fixes
(a variable-shape output fails to load: "needs to have its shape fully defined"), so answers
are checked against a copy of a model pinned to one event's shapes (:func:`write_pinned_model`).
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exatrkx.errors import InputError
from exatrkx.io import Event
from exatrkx.serve.repository import config_text, parse_config
from exatrkx.service.tls import ClientTls
from exatrkx.util.files import atomic_write

#: Environment variable naming a perf_analyzer executable to use instead of the installed one.
PERF_ANALYZER_ENV = "EXATRKX_PERF_ANALYZER"
#: Folder (under the environment's prefix) where the install script puts the tool.
INSTALL_DIR = "perf_analyzer"

#: perf_analyzer CSV column (microseconds) -> our key (milliseconds).
_CSV_MS_COLUMNS = {
    "p50 latency": "latency_p50_ms",
    "p90 latency": "latency_p90_ms",
    "p95 latency": "latency_p95_ms",
    "p99 latency": "latency_p99_ms",
    "Avg latency": "latency_avg_ms",
    "Client Send": "client_send_ms",
    "Network+Server Send/Recv": "network_server_ms",
    "Server Queue": "server_queue_ms",
    "Server Compute Input": "server_compute_input_ms",
    "Server Compute Infer": "server_compute_infer_ms",
    "Server Compute Output": "server_compute_output_ms",
    "Client Recv": "client_recv_ms",
}


class PerfAnalyzerError(RuntimeError):
    """perf_analyzer failed (a request error, a wrong answer, an unstable measurement...)."""


@dataclass(frozen=True)
class PerfAnalyzer:
    """A runnable perf_analyzer.

    Attributes:
        command: the command prefix (the executable).
        env: the full environment to run it with.
    """

    command: list[str]
    env: dict[str, str] = field(repr=False)


def install_dir() -> Path:
    """``<prefix>/perf_analyzer``, where ``make install`` puts the tool (prefix: the venv)."""
    return Path(sys.prefix) / INSTALL_DIR


def _runs(command: list[str], env: Mapping[str, str]) -> bool:
    try:
        proc = subprocess.run([*command, "--version"], capture_output=True, text=True,
                              env=dict(env), timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Perf Analyzer Version" in proc.stdout + proc.stderr


def find_perf_analyzer() -> tuple[PerfAnalyzer | None, str]:
    """Locate a perf_analyzer that runs.

    Looks at ``$EXATRKX_PERF_ANALYZER``, then ``<venv>/perf_analyzer/bin/perf_analyzer`` (a
    wrapper that sets ``LD_LIBRARY_PATH``), then ``perf_analyzer`` on ``PATH``.

    Returns:
        ``(tool, "")`` or ``(None, reason)``, the reason being fit for a skip message.
    """
    env = dict(os.environ)
    candidates: list[str] = []
    if env.get(PERF_ANALYZER_ENV):
        candidates.append(env[PERF_ANALYZER_ENV])
    wrapper = install_dir() / "bin" / "perf_analyzer"
    if wrapper.exists():
        candidates.append(str(wrapper))
    on_path = shutil.which("perf_analyzer")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        if _runs([candidate], env):
            return PerfAnalyzer([candidate], env), ""
    marker = install_dir() / "UNAVAILABLE"
    if marker.is_file():
        reason = marker.read_text().strip()
    elif candidates:
        reason = f"perf_analyzer does not run ({', '.join(candidates)})"
    else:
        reason = (f"perf_analyzer is not installed (run `make install` or "
                  f"scripts/install_perf_analyzer.sh; or set {PERF_ANALYZER_ENV})")
    return None, f"perf_analyzer unavailable: {reason}"


# ---------------------------------------------------------------------------- input data

def _tensor_entry(array: np.ndarray) -> dict[str, Any]:
    """``{"content": [...], "shape": [...]}`` of one tensor, row-major."""
    return {"content": array.ravel().tolist(), "shape": [int(d) for d in array.shape]}


def perf_data(features: Sequence[np.ndarray], input_name: str = "FEATURES",
              expected: Mapping[str, Sequence[np.ndarray]] | None = None) -> dict[str, Any]:
    """perf_analyzer's JSON input data for a list of feature arrays.

    Args:
        features: float32 ``[N, 3]`` per event (one request each, played round-robin).
        input_name: the model input.
        expected: output name -> one expected array per event (``validation_data``).

    Raises:
        InputError: no events, or ``expected`` does not give one array per event.
    """
    if not features:
        raise InputError("no events to export")
    data = [{input_name: _tensor_entry(np.asarray(f, dtype=np.float32))} for f in features]
    out: dict[str, Any] = {"data": data}
    if expected:
        for name, arrays in expected.items():
            if len(arrays) != len(features):
                raise InputError(f"{len(arrays)} expected {name} arrays for "
                                 f"{len(features)} events")
        out["validation_data"] = [
            {name: _tensor_entry(np.asarray(arrays[i])) for name, arrays in expected.items()}
            for i in range(len(features))]
    return out


def export_perf_data(events: Sequence[Event], out_json: str | Path,
                     input_name: str = "FEATURES",
                     expected: Mapping[str, Sequence[np.ndarray]] | None = None) -> Path:
    """Write events as perf_analyzer's JSON input data (see :func:`perf_data`).

    Returns:
        The written file.
    """
    doc = perf_data([e.features for e in events], input_name, expected)
    return atomic_write(out_json, lambda fh: json.dump(doc, fh, separators=(",", ":")),
                        sync=False)


def load_perf_data(path: str | Path, input_name: str = "FEATURES") -> list[np.ndarray]:
    """The feature arrays of a perf_analyzer JSON file (float32, reshaped)."""
    doc = json.loads(Path(path).read_text())
    return [np.asarray(entry[input_name]["content"], dtype=np.float32)
            .reshape(entry[input_name]["shape"]) for entry in doc["data"]]


def _max_output_bytes(data_json: Path) -> int:
    """Bytes per output tensor to reserve for shared memory: 3 x 8 bytes per input row."""
    doc = json.loads(data_json.read_text())
    rows = max((int(t["shape"][0]) for entry in doc["data"] for t in entry.values()
                if isinstance(t, dict) and t.get("shape")), default=1)
    return max(rows * 24, 4096)


# ---------------------------------------------------------------------------- pinned models

def write_pinned_model(repository: str | Path, model: str, name: str,
                       shapes: Mapping[str, Sequence[int]]) -> Path:
    """Copy ``model`` in ``repository`` as ``name`` with the given tensors' dims fixed.

    perf_analyzer validates only fixed-shape outputs; a copy pinned to one event's shapes
    (e.g. ``{"FEATURES": [313, 3], "LABELS": [313]}``) serves exactly what ``model`` does.
    A Python-backend model's version folder is copied (one more backend process); an
    ensemble's copy runs the same composing models.

    Returns:
        The new model folder (the server must be (re)started to load it).
    """
    repo = Path(repository)
    src = repo / model
    cfg = parse_config(src / "config.pbtxt")
    cfg.name = name
    found = set()
    for tensor in [*cfg.input, *cfg.output]:
        if tensor.name in shapes:
            del tensor.dims[:]
            tensor.dims.extend(int(d) for d in shapes[tensor.name])
            found.add(tensor.name)
    missing = sorted(set(shapes) - found)
    if missing:
        raise InputError(f"model {model} has no tensor(s) {', '.join(missing)}")
    dst = repo / name
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("config.pbtxt", "__pycache__"))
    (dst / "config.pbtxt").write_text(config_text(cfg))
    return dst


# ---------------------------------------------------------------------------- running

def concurrency_ranges(concurrency: Sequence[int]) -> list[tuple[int, int, int]]:
    """``(start, end, step)`` ranges covering the levels: one range when they are evenly
    spaced, else one per level.

    Raises:
        InputError: no level, or a level below 1.
    """
    levels = sorted({int(c) for c in concurrency})
    if not levels or levels[0] < 1:
        raise InputError("concurrency levels must be >= 1")
    steps = {b - a for a, b in itertools.pairwise(levels)}
    if len(steps) <= 1:
        return [(levels[0], levels[-1], steps.pop() if steps else 1)]
    return [(c, c, 1) for c in levels]


def perf_tls_args(tls: ClientTls | None) -> list[str]:
    """perf_analyzer's arguments for a gRPC connection over TLS (none for plain text)."""
    if tls is None:
        return []
    args = ["--ssl-grpc-use-ssl"]
    if tls.ca is not None:
        args.append(f"--ssl-grpc-root-certifications-file={tls.ca}")
    if tls.cert is not None and tls.key is not None:
        args += [f"--ssl-grpc-private-key-file={tls.key}",
                 f"--ssl-grpc-certificate-chain-file={tls.cert}"]
    return args


def perf_analyzer_args(model: str, url: str, data_json: str | Path, protocol: str = "grpc",
                       concurrency: tuple[int, int, int] = (1, 4, 1),
                       shared_memory: str = "none",
                       measurement_interval_ms: int = 1000,
                       measurement_request_count: int | None = None,
                       stability_percentage: float = 100.0, max_trials: int = 10,
                       csv_path: str | Path | None = None,
                       extra: Sequence[str] = ()) -> list[str]:
    """perf_analyzer arguments (after the executable) for one model and one concurrency
    range ``(start, end, step)``.

    Raises:
        InputError: an unknown protocol or shared-memory kind.
    """
    if protocol not in ("grpc", "http"):
        raise InputError(f"protocol must be 'grpc' or 'http', got {protocol!r}")
    if shared_memory not in ("none", "system", "cuda"):
        raise InputError(f"shared_memory must be none, system or cuda, got {shared_memory!r}")
    start, end, step = concurrency
    args = [
        "-m", model, "-u", url, "-i", protocol,
        "--input-data", str(data_json),
        "--concurrency-range", f"{start}:{end}:{step}",
        "--shared-memory", shared_memory,
        "-s", f"{stability_percentage:g}", "-r", str(max_trials),
        "--verbose-csv",
    ]
    if measurement_request_count:
        args += ["--measurement-mode", "count_windows",
                 "--measurement-request-count", str(measurement_request_count),
                 "-p", str(measurement_interval_ms)]
    else:
        args += ["--measurement-mode", "time_windows", "-p", str(measurement_interval_ms)]
    if shared_memory != "none":
        args += ["--output-shared-memory-size", str(_max_output_bytes(Path(data_json)))]
    if csv_path is not None:
        args += ["-f", str(csv_path)]
    return [*args, *extra]


def _float(value: str | None) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except ValueError:
        return None


def parse_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows of perf_analyzer's ``-f`` CSV: concurrency, infer/s, latencies and the breakdown
    converted from microseconds to milliseconds."""
    rows = []
    with open(path, newline="") as fh:
        for rec in csv.DictReader(fh):
            conc = _float(rec.get("Concurrency"))
            if conc is None:
                continue
            row: dict[str, Any] = {"concurrency": int(conc),
                                   "throughput_infer_per_s": _float(rec.get("Inferences/Second"))}
            for column, key in _CSV_MS_COLUMNS.items():
                us = _float(rec.get(column))
                row[key] = None if us is None else us / 1000.0
            rows.append(row)
    return rows


_BLOCK = re.compile(r"^Request concurrency: (\d+)", re.M)


def parse_stdout(text: str) -> dict[int, dict[str, int]]:
    """Request counts per concurrency from perf_analyzer's report: the client's ``requests``
    and the server's ``server_inferences`` / ``server_successes`` (when it reports them)."""
    out: dict[int, dict[str, int]] = {}
    marks = list(_BLOCK.finditer(text))
    for i, mark in enumerate(marks):
        block = text[mark.end(): marks[i + 1].start() if i + 1 < len(marks) else len(text)]
        counts: dict[str, int] = {}
        for key, pattern in (("requests", r"Request count: (\d+)"),
                             ("server_inferences", r"Inference count: (\d+)"),
                             ("server_successes", r"Successful request count: (\d+)")):
            m = re.search(pattern, block)
            if m:
                counts[key] = int(m.group(1))
        out[int(mark.group(1))] = counts
    return out


def run_perf_analyzer(model: str, url: str, data_json: str | Path, protocol: str = "grpc",
                      concurrency: Sequence[int] = (1, 2, 4), shared_memory: str = "none",
                      measurement_interval_ms: int = 1000,
                      measurement_request_count: int | None = None,
                      stability_percentage: float = 100.0, max_trials: int = 10,
                      extra: Sequence[str] = (), timeout: float = 600.0,
                      tool: PerfAnalyzer | None = None) -> list[dict[str, Any]]:
    """Run perf_analyzer against a served model; one result per concurrency level.

    Keep runs short with a small ``measurement_interval_ms`` (time windows) or a
    ``measurement_request_count`` (count windows); a loose ``stability_percentage`` keeps a
    busy machine from failing the run as "unstable".

    Args:
        model: the model name on the server.
        url: ``host:port`` of the server's gRPC (or HTTP) endpoint.
        data_json: input data (:func:`export_perf_data`); its ``validation_data``, if any, is
            checked by perf_analyzer on every answer.
        protocol: ``grpc`` or ``http``.
        concurrency: levels (one perf_analyzer run if evenly spaced, else one per level).
        shared_memory: ``none``, ``system`` (client on the same host) or ``cuda``.
        extra: more perf_analyzer arguments, passed as given.
        timeout: seconds before the run is killed.
        tool: the perf_analyzer to use (default: :func:`find_perf_analyzer`).

    Returns:
        Dicts with ``concurrency``, ``throughput_infer_per_s``,
        ``latency_{p50,p90,p95,p99,avg}_ms``,
        ``server_queue_ms``, ``server_compute_{input,infer,output}_ms``, ``client_send_ms``,
        ``network_server_ms``, ``client_recv_ms``, ``requests`` and, when reported,
        ``server_inferences`` and ``server_successes``.

    Raises:
        PerfAnalyzerError: it is unavailable, failed (any request error or wrong answer ends
            it with a non-zero code) or timed out; the message ends with its output.
    """
    if tool is None:
        tool, reason = find_perf_analyzer()
        if tool is None:
            raise PerfAnalyzerError(reason)
    rows: list[dict[str, Any]] = []
    for levels in concurrency_ranges(concurrency):
        args = perf_analyzer_args(model, url, data_json, protocol, levels, shared_memory,
                                  measurement_interval_ms, measurement_request_count,
                                  stability_percentage, max_trials, None, extra)
        rows += _run_once(tool, model, args, timeout)
    for row in rows:
        row.update({"model": model, "protocol": protocol, "shared_memory": shared_memory})
    return sorted(rows, key=lambda r: r["concurrency"])


def _run_once(tool: PerfAnalyzer, model: str, args: list[str],
              timeout: float) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="exatrkx-perf-") as tmp:
        csv_path = Path(tmp) / "report.csv"
        try:
            proc = subprocess.run([*tool.command, *args, "-f", str(csv_path)],
                                  capture_output=True, text=True, env=tool.env,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise PerfAnalyzerError(f"perf_analyzer on {model} timed out after "
                                    f"{timeout:.0f} s") from exc
        if proc.returncode != 0 or not csv_path.is_file():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise PerfAnalyzerError(f"perf_analyzer on {model} failed (exit code "
                                    f"{proc.returncode}):\n{tail}")
        rows = parse_csv(csv_path)
    counts = parse_stdout(proc.stdout)
    for row in rows:
        row.update(counts.get(row["concurrency"], {}))
    return rows
