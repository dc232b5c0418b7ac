"""Event simulation with ACTS: Pythia 8 sources (or a particle gun) through Fatras in the
generic detector, digitization and spacepoints.

- :mod:`exatrkx.sim.simulate`: ``exatrkx simulate``, the sources and the event tables;
- :mod:`exatrkx.sim.fatras`: ACTS' sequencer of one batch of events;
- :mod:`exatrkx.sim.geometry`: the detector as ACTS builds it (layers, modules, ids);
- :mod:`exatrkx.sim.pythia`, :mod:`exatrkx.sim.particles`: generators and particle ids.
"""
