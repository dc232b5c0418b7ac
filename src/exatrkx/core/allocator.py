"""Memory-allocator settings for the processes that run pipeline stages.

Every stage allocates tensors of a few hundred kB to a few MB per event (the GNN's
``[E, hidden]`` latents, the build's candidate lists) and frees them at the end of the
event. With glibc's defaults such blocks are either ``mmap``-ed and unmapped each time,
or carved from the top of the heap and handed back to the kernel when freed; either way
the next event pays for fresh, zeroed pages. Keeping freed memory in the process (a high
``mmap`` threshold and trim threshold, some top padding) avoids that. Measured on the
shared events: the in-process pipeline gains 5-6% throughput (54 against 52 events/s with
one event in flight, 97-99 against 92-93 with four); sending one event at a time through
options 0, 4 and 5 in turn, the GNN's Triton stub took 16.5-19.3 ms per event against
13.4-15.0 ms for the same stage in the client, and 13.5-13.6 against 12.0-12.8 with these
settings. ``benchmarks/bench_service.py``, which interleaves every option and floor model
on each event, saw no difference beyond its noise (option 4 - option 0: 4.2 / 4.0 / 4.8 ms
per event over gRPC / HTTP / shared memory with the settings, 4.1 / 4.0 / 3.9 without).

:func:`tune_allocator` sets them in the running process (``mallopt``); the ``exatrkx``
command and every served model call it once at start. :func:`allocator_env` gives the
same settings as the environment variables glibc reads at start-up, for the
``tritonserver`` process. Both do nothing where the C library is not glibc, or when the
environment variable ``EXATRKX_MALLOC=default`` asks for glibc's own behaviour (it reaches
the server and its stubs too). A program that embeds the pipeline may call
:func:`tune_allocator` itself.

The cost is memory: a process keeps its peak heap (about the largest event's working set,
tens of MB) instead of returning it between events.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Mapping
from dataclasses import dataclass

# mallopt parameter numbers (glibc <malloc.h>)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

_ENV_NAMES = {"trim_threshold": "MALLOC_TRIM_THRESHOLD_", "top_pad": "MALLOC_TOP_PAD_",
              "mmap_threshold": "MALLOC_MMAP_THRESHOLD_"}


@dataclass(frozen=True)
class AllocatorSettings:
    """glibc malloc thresholds in bytes.

    Attributes:
        mmap_threshold: blocks at least this large are ``mmap``-ed (default glibc: 128 kB,
            raised dynamically); below it they come from the heap and are reused.
        trim_threshold: free memory at the top of the heap beyond this is returned to the
            kernel.
        top_pad: extra bytes requested whenever the heap grows.
    """

    mmap_threshold: int = 32 << 20
    trim_threshold: int = 256 << 20
    top_pad: int = 16 << 20


#: Environment variable; ``default`` turns the settings off.
OPT_OUT = "EXATRKX_MALLOC"


def is_glibc() -> bool:
    """Whether this process runs on glibc (the only C library these settings apply to)."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (AttributeError, ValueError, OSError):  # not POSIX, or a C library without it
        return False


def _wanted(environ: Mapping[str, str]) -> bool:
    return is_glibc() and environ.get(OPT_OUT, "").strip().lower() != "default"


def tune_allocator(settings: AllocatorSettings | None = None) -> bool:
    """Apply ``settings`` to this process's malloc.

    Returns:
        True when glibc accepted all three; False where they do not apply (not glibc, or
        ``EXATRKX_MALLOC=default``) or glibc refused one (it keeps its previous value then).
    """
    if not _wanted(os.environ):
        return False
    s = settings or AllocatorSettings()
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    mallopt = libc.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = [mallopt(_M_MMAP_THRESHOLD, s.mmap_threshold),
            mallopt(_M_TRIM_THRESHOLD, s.trim_threshold),
            mallopt(_M_TOP_PAD, s.top_pad)]
    return all(r == 1 for r in done)


def allocator_env(settings: AllocatorSettings | None = None,
                  environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings as glibc's start-up environment variables, for a child process.

    Variables already set in ``environ`` (default: this process's environment) win: an
    operator's own choice is kept.
    """
    current = os.environ if environ is None else environ
    if not _wanted(current):
        return {}
    s = settings or AllocatorSettings()
    return {env: str(getattr(s, field)) for field, env in _ENV_NAMES.items()
            if env not in current}
