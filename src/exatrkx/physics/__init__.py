"""Physics: the truth, track and edge metrics, efficiency plots, event displays.

- :mod:`exatrkx.physics.truth`: truth graph and particle kinematics (training and metrics);
- :mod:`exatrkx.physics.metrics`: efficiency, fakes, duplicates, edge metrics;
- :mod:`exatrkx.physics.plots`: efficiency plots;
- :mod:`exatrkx.physics.display`: event displays (``exatrkx show``).
"""
