"""Event simulation: Pythia 8 sources in the generic detector.

- :mod:`exatrkx.sim.simulate`: ``exatrkx simulate`` and the event sources;
- :mod:`exatrkx.sim.detector`: the generic (TrackML) detector;
- :mod:`exatrkx.sim.propagate`, :mod:`exatrkx.sim.particles`, :mod:`exatrkx.sim.pythia`.
"""
