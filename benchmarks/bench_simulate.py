"""Time the simulation of HNL events (Pythia generation + detector simulation).

    .venv/bin/python benchmarks/bench_simulate.py --events 100 --seed 1234 --repeats 2

The first event of the first repeat includes Pythia's initialisation, reported separately;
the figure is the median over repeats of the wall time for all events.
"""

from __future__ import annotations

import argparse
import statistics
import time

from exatrkx.sim.simulate import simulate_events


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--source", default="hnl")
    ap.add_argument("--pileup", type=float, default=0.0)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    next(simulate_events(args.source, 1, args.seed, pileup=args.pileup, first_event=10**6))
    init = time.perf_counter() - t0
    print(f"first event incl. Pythia initialisation: {init:.2f} s")

    times, hits = [], 0
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        hits = sum(ev.num_hits for ev in simulate_events(args.source, args.events, args.seed,
                                                         pileup=args.pileup))
        times.append(time.perf_counter() - t0)
    total = statistics.median(times)
    print(f"{args.events} {args.source} events (pileup {args.pileup:g}, seed {args.seed}): "
          f"{total:.2f} s total, {args.events / total:.1f} events/s, "
          f"{hits / args.events:.0f} spacepoints/event "
          f"(repeats: {', '.join(f'{t:.2f}' for t in times)} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
