"""The ACTS reconstruction chain: our track finder as an ACTS algorithm, against ACTS' CKF.

Events simulated with ACTS in the generic detector (TrackML files with truth) are read into
ACTS' event data model; ACTS' CKF finds tracks with ACTS' own generic-detector settings, our
pipeline finds them through the package's runner (any service option, in process or on a
Triton server) and ACTS fits them with its Kalman fitter; both finders' tracks get the same
selection and are scored with one definition (:mod:`exatrkx.physics.metrics`).

- :mod:`exatrkx.acts.settings`: every setting, with its source in ACTS (no ``acts`` import);
- :mod:`exatrkx.acts.detector`: the generic detector, its field, module frames in numpy;
- :mod:`exatrkx.acts.reader`: TrackML events -> ACTS measurements;
- :mod:`exatrkx.acts.finder`: our finder as an ACTS algorithm (spacepoints -> proto-tracks);
- :mod:`exatrkx.acts.chain`: the sequencer: reading, CKF, our finder + fit, collection;
- :mod:`exatrkx.acts.ledger`: what happened to each event (errors, skips, block times);
- :mod:`exatrkx.acts.evaluate`: scoring, per-event results (JSON), summaries;
- :mod:`exatrkx.acts.app`: the ``exatrkx chain`` application.

``acts`` itself is a heavy import (about 0.4 s, plus the detector): this package's
``__init__`` imports none of it; the command line imports :mod:`exatrkx.acts.app` only when
``exatrkx chain`` runs.
"""
