"""Physical constants and the detector's field, in one place."""

from __future__ import annotations

#: Transverse momentum (GeV) of a unit charge on a 1 mm radius in a 1 T field:
#: pT = GEV_PER_TESLA_MM * B[T] * R[mm].
GEV_PER_TESLA_MM = 0.299792458e-3
#: The solenoid field of the generic (TrackML) detector along z, in tesla.
B_FIELD_T = 2.0
