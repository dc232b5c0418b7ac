"""ExaTrkX as a Service: GNN track finding in-process and on NVIDIA Triton."""

from __future__ import annotations

__version__ = "0.1.0"
