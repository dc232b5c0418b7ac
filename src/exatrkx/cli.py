"""The ``exatrkx`` command.

Every command turns an :class:`~exatrkx.errors.InputError` into one line on stderr and exit
code 2, never a traceback. Heavy imports happen inside the commands so that ``--help`` is fast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from exatrkx.errors import InputError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="ExaTrkX GNN track finding, in-process and served by NVIDIA Triton.")

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> None:
    """Print one line to stderr and exit with code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def user_errors(func: F) -> F:
    """Turn InputError (and a Ctrl-C) into a one-line message and exit code 2 (130)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def _process_setup() -> None:
    # runs before every command, any of which may run pipeline stages in this process
    from exatrkx.allocator import tune_allocator

    tune_allocator()


def main() -> None:  # pragma: no cover - console entry point
    app()


# ---------------------------------------------------------------------------- simulate / show

@app.command()
@user_errors
def simulate(
    out: Annotated[Path, typer.Option(help="Output directory for TrackML CSV files.")],
    source: Annotated[str, typer.Option(help="Event source: hnl, gun or minbias.")] = "hnl",
    events: Annotated[int, typer.Option(help="Number of events.")] = 10,
    pileup: Annotated[float, typer.Option(help="Mean number of minimum-bias interactions "
                                               "overlaid (Poisson).")] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same events).")] = 1,
    first_event: Annotated[int, typer.Option(help="Number of the first event.")] = 0,
    noise: Annotated[float, typer.Option(help="Noise hits as a fraction of real hits.")] = 0.0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Simulate events and write TrackML-style hits/particles/truth CSV files."""
    from exatrkx.simulate import run_simulate

    run_simulate(source=source, n_events=events, seed=seed, out=out, pileup=pileup,
                 first_event=first_event, noise=noise, progress=progress)


@app.command()
@user_errors
def show(
    event: Annotated[Path, typer.Argument(help="Event file, TrackML prefix or directory.")],
    out: Annotated[Path, typer.Option(help="Output PNG file.")] = Path("event.png"),
) -> None:
    """Draw an event's hits (x-y and r-z views), coloured by particle when truth exists."""
    from exatrkx.io import event_sources, read_event
    from exatrkx.plotting import plot_event

    ev = read_event(event_sources(event)[0])
    plot_event(ev, out)
    typer.echo(f"wrote {out} ({ev.num_hits} hits)")


# ---------------------------------------------------------------------------- train

@app.command()
@user_errors
def train(
    out: Annotated[Path, typer.Option(help="Output weights folder.")] = Path("weights"),
    data: Annotated[Path | None, typer.Option(help="TrackML events with truth to train on "
                                                    "(default: simulate HNL events).")] = None,
    quick: Annotated[bool, typer.Option(help="A smoke model in about a minute.")] = False,
    events: Annotated[int | None, typer.Option(help="Training events to simulate.")] = None,
    seed: Annotated[int | None, typer.Option(help="Simulation seed of the training events.")]
    = None,
    pileup: Annotated[float | None, typer.Option(help="Mean pileup of training events.")]
    = None,
    gnn_epochs: Annotated[int | None, typer.Option(help="Passes of the GNN training.")] = None,
    threads: Annotated[int | None, typer.Option(help="Torch threads (1 is faster on a busy "
                                                     "machine).")] = None,
    edge_pt: Annotated[float | None, typer.Option(
        help="pT (GeV) below which the filter and GNN learn a particle's edges as false "
             "(0 = all true).")] = None,
    progress: Annotated[bool, typer.Option(help="Show progress.")] = True,
) -> None:
    """Train the embedding, filter and GNN nets and choose radius and cuts."""
    from exatrkx.train import run_train

    if events is not None and events < 1:
        raise InputError(f"--events must be positive, got {events}")
    if edge_pt is not None and not edge_pt >= 0:
        raise InputError(f"--edge-pt must be >= 0, got {edge_pt}")
    run_train(out, data=data, quick=quick, progress=progress,
              overrides={"train_events": events, "seed": seed, "pileup": pileup,
                         "gnn_epochs": gnn_epochs, "threads": threads,
                         "edge_pt": edge_pt})


# ---------------------------------------------------------------------------- serve

@app.command()
@user_errors
def serve(
    repository: Annotated[Path | None, typer.Option(
        help="Model repository: served as is if it holds models, else written there "
             "(default: a temporary one).")] = None,
    weights: Annotated[Path | None, typer.Option(
        help="Weights folder (default: the shipped weights).")] = None,
    grpc_port: Annotated[int, typer.Option(help="gRPC port.")] = 8001,
    http_port: Annotated[int, typer.Option(help="HTTP port.")] = 8000,
    metrics_port: Annotated[int, typer.Option(help="Prometheus metrics port.")] = 8002,
    instances: Annotated[int, typer.Option(help="Instances of every model.")] = 1,
    host: Annotated[str, typer.Option(help="Address to listen on (default: this host only; "
                                           "0.0.0.0 exposes the service to the network).")]
    = "127.0.0.1",
    max_hits: Annotated[int, typer.Option(help="Refuse events with more hits.")] = 100_000,
    log_verbose: Annotated[int, typer.Option(help="Triton log verbosity.")] = 0,
    open_control: Annotated[bool, typer.Option(
        "--open-control", help="Serve the statistics, shared-memory, trace, logging and "
                               "repository APIs without a key (default: they need the key "
                               "of $EXATRKX_API_KEY, else a random one that is printed).")]
    = False,
) -> None:
    """Run NVIDIA Triton with the pipeline's models in the foreground until interrupted."""
    import os

    from exatrkx.serve import RepositoryConfig, ServerConfig, ServerError
    from exatrkx.serve.launcher import API_KEY_ENV, RESTRICTED_APIS, is_loopback, serve_forever

    if not is_loopback(host):
        typer.echo(f"warning: --host {host} exposes the service beyond this machine: "
                   "unencrypted, and inference needs no key (see docs/security.md)", err=True)
    try:
        serve_forever(repository, weights,
                      ServerConfig(host=host, grpc_port=grpc_port, http_port=http_port,
                                   metrics_port=metrics_port, log_verbose=log_verbose,
                                   api_key=os.environ.get(API_KEY_ENV) or None,
                                   restricted=() if open_control else RESTRICTED_APIS),
                      RepositoryConfig(instances=instances, max_hits=max_hits),
                      echo=lambda line: typer.echo(line))
    except ServerError as exc:
        fail(str(exc))


# ---------------------------------------------------------------------------- reconstruct

@app.command()
@user_errors
def reconstruct(
    events: Annotated[Path, typer.Option(help="Events: a directory, a file or a TrackML "
                                              "prefix (TrackML, ACTS spacepoints or "
                                              "3-column feature CSVs).")],
    option: Annotated[int, typer.Option(help="Service option 0-5 (0: in process).")] = 0,
    url: Annotated[str | None, typer.Option(help="Triton HOST:PORT (options 1-5).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write <event>-tracks.csv here.")] = None,
    evaluate: Annotated[bool, typer.Option(help="Print physics metrics (needs truth).")]
    = False,
    plots: Annotated[Path | None, typer.Option(help="Write efficiency plots here "
                                                    "(implies --evaluate).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object only, "
                                                          "as the last line.")] = False,
    weights: Annotated[Path | None, typer.Option(help="Weights folder (default: the "
                                                      "shipped weights).")] = None,
    device: Annotated[str, typer.Option(help="Torch device of the local stages.")] = "cpu",
    threads: Annotated[int, typer.Option(help="Torch threads.")] = 1,
    resume: Annotated[bool, typer.Option(help="Skip events whose tracks file exists in "
                                              "--out (after an interrupted run).")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds before a request to the server "
                                                "times out (options 1-5).")] = 60.0,
    retries: Annotated[int, typer.Option(help="Resends of a request that failed for a "
                                              "reason that may pass (options 1-5).")] = 2,
) -> None:
    """Find tracks in events; optionally write them and evaluate against truth.

    Options 1-5 send the key of $EXATRKX_API_KEY with every request.
    """
    import json

    from exatrkx.pipeline import reconstruct_events

    if timeout <= 0:
        raise InputError(f"--timeout must be positive, got {timeout}")
    if retries < 0:
        raise InputError(f"--retries must be >= 0, got {retries}")
    report = reconstruct_events(events, option=option, url=url, out=out, evaluate=evaluate,
                                plots=plots, weights_dir=weights, device=device,
                                num_threads=threads,
                                on_line=None if json_out else typer.echo, resume=resume,
                                timeout_s=timeout, retries=retries)
    for message in report.errors:
        typer.echo(f"error: {message}", err=True)
    if json_out:
        typer.echo(json.dumps(report.summary))
    if report.errors:
        raise typer.Exit(2)


# ---------------------------------------------------------------------------- perf_analyzer

@app.command("export-perf-data")
@user_errors
def export_perf_data_command(
    events: Annotated[Path, typer.Option(help="Event file or directory (any input format).")],
    out: Annotated[Path, typer.Option(help="perf_analyzer JSON input data file to write.")],
    max_events: Annotated[int | None, typer.Option(help="Export at most this many events.")]
    = None,
    input_name: Annotated[str, typer.Option(help="Model input name.")] = "FEATURES",
) -> None:
    """Write events as perf_analyzer's JSON input data (--input-data FILE)."""
    from exatrkx.io import event_sources, read_event
    from exatrkx.perf import export_perf_data

    if max_events is not None and max_events < 1:
        raise InputError(f"--max-events must be positive, got {max_events}")
    sources = event_sources(events)[:max_events]
    path = export_perf_data([read_event(s) for s in sources], out, input_name)
    typer.echo(f"wrote {len(sources)} events to {path}")


# ---------------------------------------------------------------------------- study

@app.command()
@user_errors
def study(
    events: Annotated[Path | None, typer.Option(
        help="Events to time (default: the shared HNL events, else 100 simulated HNL "
             "events).")] = None,
    options: Annotated[str, typer.Option(help="Service options to time (0 is always "
                                              "timed: it is the labels' reference).")]
    = "0,1,2,3,4,5",
    concurrency: Annotated[str | None, typer.Option(
        help="Events in flight of the concurrency scan [default: 1,2,4,8; quick: 1,2].")]
    = None,
    out: Annotated[Path, typer.Option(help="Folder of report.md, the plots and "
                                           "timings.csv.")] = Path("study-out"),
    url: Annotated[str | None, typer.Option(
        help="gRPC HOST:PORT of a running server (default: start the embedded one).")]
    = None,
    http_url: Annotated[str | None, typer.Option(
        help="HTTP HOST:PORT of that server (default: its host, port 8000).")] = None,
    quick: Annotated[bool, typer.Option(help="10 events, 1 repeat, fewer scan points "
                                             "(about a minute).")] = False,
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
        help="Model instances per model to scan [default: 1,2; quick: 1].")] = None,
    batching_scan: Annotated[bool | None, typer.Option(
        "--batching-scan/--no-batching-scan",
        help="Also time a server with dynamic batching [default: on; quick: off].")] = None,
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
    servers: Annotated[str | None, typer.Option(
        help="Server counts, e.g. 1,2,3: also time options 4 and 5 over that many embedded "
             "servers (one instance each) against one server with as many instances.")]
    = None,
) -> None:
    """The timing study: every service option, transports, concurrency, server settings and
    perf_analyzer; writes report.md, PNG plots and timings.csv, prints a summary."""
    import json

    from exatrkx.serve import ServerError
    from exatrkx.study import StudyConfig, quick_config, run_study
    from exatrkx.study.config import (
        ALL_OPTIONS,
        parse_float_list,
        parse_int_list,
        parse_protocols,
    )
    from exatrkx.study.report import jsonable, summary_text, write_report

    settings: dict[str, Any] = {
        "out": out, "events": events, "url": url, "http_url": http_url,
        "weights": weights, "threads": threads, "progress": progress,
        "perf_analyzer": perf_analyzer,
        "options": parse_int_list(options, "--options", ALL_OPTIONS, minimum=0),
        "protocols": parse_protocols(protocols)}
    for key, value in (("concurrency", concurrency), ("instances", instances),
                       ("servers", servers)):
        if value is not None:
            settings[key] = parse_int_list(value, f"--{key}")
    for key, value in (("repeats", repeats), ("n_events", n_events),
                       ("batching_scan", batching_scan)):
        if value is not None:
            settings[key] = value
    for key, value in (("network_delays", network_delay),
                       ("network_bandwidths", network_bandwidth)):
        if value is not None:
            settings[key] = parse_float_list(value, f"--{key[:-1].replace('_', '-')}")
    cfg = quick_config(**settings) if quick else StudyConfig(**settings)
    if out.exists() and not out.is_dir():
        raise InputError("--out must be a folder", out)
    try:
        result = run_study(cfg, echo=lambda line: typer.echo(line, err=True))
    except ServerError as exc:
        fail(str(exc).splitlines()[0] if str(exc) else "the Triton server failed")
        return
    try:
        summary = write_report(result, out)
    except OSError as exc:
        raise InputError(f"cannot write the report ({exc.strerror or exc})", out) from None
    typer.echo(summary_text(summary))
    typer.echo(f"report: {out / 'report.md'}")
    if json_out:
        typer.echo(json.dumps(jsonable(summary)))


if __name__ == "__main__":  # pragma: no cover
    main()
