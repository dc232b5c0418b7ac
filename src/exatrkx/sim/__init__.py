"""Building blocks of the fast simulation: particles, Pythia sources, helix propagation."""
