"""Events and their files: the :class:`Event` type, readers and writers.

- :mod:`exatrkx.io.event`: :class:`Event` and the TrackML column names;
- :mod:`exatrkx.io.readers`: :func:`read_event` (any format), :func:`event_sources`;
- :mod:`exatrkx.io.writers`: :func:`write_trackml`, :func:`write_tracks` (atomic);
- :mod:`exatrkx.io.csvtext`: the line-exact CSV parser behind the readers;
- :mod:`exatrkx.io.shared`: where the shared real events live.
"""

from __future__ import annotations

from exatrkx.io.event import Event
from exatrkx.io.readers import event_sources, iter_events, read_event
from exatrkx.io.writers import tracks_path, write_trackml, write_tracks

__all__ = ["Event", "event_sources", "iter_events", "read_event", "tracks_path",
           "write_trackml", "write_tracks"]
