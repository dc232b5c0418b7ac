"""``exatrkx study``: the timing study."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from exatrkx.cli.app import app, user_errors
from exatrkx.cli.options import client_tls_options
from exatrkx.contract import ALL_OPTIONS, Option
from exatrkx.errors import InputError


@app.command()
@user_errors
@client_tls_options
def study(
    events: Annotated[Path | None, typer.Option(
        help="Events to time (default: the shared HNL events, else 100 simulated HNL "
             "events).")] = None,
    options: Annotated[str, typer.Option(help="Service options to time (0 is always "
                                              "timed: it is the labels' reference).")]
    = ",".join(str(int(o)) for o in ALL_OPTIONS),
    concurrency: Annotated[str | None, typer.Option(
        help="Events in flight of the throughput scan [default: 1,2,4,8,16; quick: 1,2,8].")]
    = None,
    out: Annotated[Path, typer.Option(help="Folder of report.md, the plots and "
                                           "timings.csv.")] = Path("study-out"),
    url: Annotated[str | None, typer.Option(
        help="gRPC HOST:PORT of a running server (default: start the embedded one).")]
    = None,
    http_url: Annotated[str | None, typer.Option(
        help="HTTP HOST:PORT of that server (default: its host, port 8000).")] = None,
    quick: Annotated[bool, typer.Option(help="10 events, 1 repeat, the main server only "
                                             "(under a minute; ratios indicative).")] = False,
    repeats: Annotated[int | None, typer.Option(
        help="Passes over the events per option [default: 3; quick: 1].")] = None,
    n_events: Annotated[int | None, typer.Option(
        help="Time at most this many events [default: 100; quick: 10].")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON "
                                                          "object, as the last line.")]
    = False,
    weights: Annotated[Path | None, typer.Option(
        help="Weights folder (default: the shipped weights, else random-init nets).")]
    = None,
    protocols: Annotated[str, typer.Option(help="Transports: grpc, http, shm (system shared "
                                                "memory); the first is the headline.")]
    = "grpc,http,shm",
    instances: Annotated[str | None, typer.Option(
        help="Model instances per model to scan [default: 1,2; quick: the main server's].")]
    = None,
    batching_scan: Annotated[bool | None, typer.Option(
        "--batching-scan/--no-batching-scan",
        help="Scan dynamic batching on and off [default: on; quick: off].")] = None,
    main_instances: Annotated[int | None, typer.Option(
        help="Model instances of the main server [default: the repository's].")] = None,
    main_batching: Annotated[bool | None, typer.Option(
        "--main-batching/--no-main-batching",
        help="Dynamic batching on the main server [default: the repository's].")] = None,
    perf_analyzer: Annotated[bool, typer.Option(
        "--perf-analyzer/--no-perf-analyzer", help="Run Triton's perf_analyzer too.")] = True,
    threads: Annotated[int, typer.Option(help="Torch threads of the client and of every "
                                              "server model.")] = 1,
    progress: Annotated[bool, typer.Option(help="Progress bars on stderr.")] = True,
    network_delay: Annotated[str | None, typer.Option(
        help="One-way delays in ms, e.g. 0,0.1,0.5,2.5: also time options 3, 4, 5 through a "
             "loopback delay proxy.")] = None,
    network_bandwidth: Annotated[str | None, typer.Option(
        help="Bandwidth caps in Gbit/s for the network scan, e.g. 1,10.")] = None,
    chain_events: Annotated[Path | None, typer.Option(
        help="ACTS-simulated events with truth: also run the ACTS chain, our finder through "
             "options 0, 4, 5 against ACTS' CKF (report section and radius figure).")]
    = None,
    servers: Annotated[str | None, typer.Option(
        help="Server counts, e.g. 1,2,3: also time options 4 and 5 over that many embedded "
             "servers (one instance each) against one server with as many instances.")]
    = None,
    tls: Any = None,
) -> None:
    """The timing study: every service option, transports, concurrency, server settings and
    perf_analyzer; writes report.md, PNG plots and timings.csv, prints a summary."""
    from exatrkx.study import StudyConfig, quick_config, run_study
    from exatrkx.study.config import parse_float_list, parse_int_list, parse_protocols
    from exatrkx.study.markdown import summary_text
    from exatrkx.study.report import write_report
    from exatrkx.util.jsonsafe import dumps

    settings: dict[str, Any] = {
        "out": out, "events": events, "url": url, "http_url": http_url, "tls": tls,
        "weights": weights, "threads": threads, "progress": progress,
        "perf_analyzer": perf_analyzer, "chain_events": chain_events,
        "options": tuple(Option(o) for o in parse_int_list(
            options, "--options", tuple(int(o) for o in ALL_OPTIONS), minimum=0)),
        "protocols": parse_protocols(protocols)}
    for key, text in (("concurrency", concurrency), ("instances", instances),
                      ("servers", servers)):
        if text is not None:
            settings[key] = parse_int_list(text, f"--{key}")
    for key, given in (("repeats", repeats), ("n_events", n_events),
                       ("batching_scan", batching_scan), ("main_instances", main_instances),
                       ("main_batching", main_batching)):
        if given is not None:
            settings[key] = given
    for key, value in (("network_delays", network_delay),
                       ("network_bandwidths", network_bandwidth)):
        if value is not None:
            settings[key] = parse_float_list(value, f"--{key[:-1].replace('_', '-')}")
    if tls is not None and url is None:
        raise InputError("--tls-ca and the other TLS options need --url (the embedded server "
                         "is plain text on this host)")
    cfg = quick_config(**settings) if quick else StudyConfig(**settings)
    if out.exists() and not out.is_dir():
        raise InputError("--out must be a folder", out)
    result = run_study(cfg, echo=lambda line: typer.echo(line, err=True))
    try:
        summary = write_report(result, out)
    except OSError as exc:
        raise InputError(f"cannot write the report ({exc.strerror or exc})", out) from None
    typer.echo(summary_text(summary))
    typer.echo(f"report: {out / 'report.md'}")
    if json_out:
        typer.echo(dumps(summary))
