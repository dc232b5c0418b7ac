"""The key policy of the server's control APIs (see ``docs/security.md``).

The control APIs (model repository, shared memory, statistics, trace, logging) answer only
requests that carry the server's key in :data:`exatrkx.contract.API_KEY_HEADER` (Triton's
restricted-protocol settings). The key is random per server unless given.
"""

from __future__ import annotations

import re
import secrets

from exatrkx.errors import InputError

#: Triton APIs behind the key by default: everything but health, metadata, model config and
#: inference (which any standard Triton client may use).
RESTRICTED_APIS = ("model-repository", "shared-memory", "statistics", "trace", "logging")
#: APIs Triton 2.51 can restrict.
KNOWN_APIS = ("health", "metadata", "inference", "shared-memory", "model-config",
              "model-repository", "statistics", "trace", "logging")
_KEY_RE = re.compile(r"[A-Za-z0-9._~-]{16,256}")


def new_api_key() -> str:
    """A random key (32 URL-safe characters, 192 bits)."""
    return secrets.token_urlsafe(24)


def check_api_key(key: str) -> str:
    """``key`` if it can be a key (16-256 characters of ``A-Za-z0-9._~-``).

    Raises:
        InputError: too short, too long or other characters.
    """
    if not _KEY_RE.fullmatch(key):
        raise InputError("an API key needs 16 to 256 characters of A-Z a-z 0-9 . _ ~ -")
    return key


def is_loopback(host: str) -> bool:
    """True when ``host`` is a loopback address or name (not reachable from elsewhere)."""
    return host == "localhost" or host.startswith("127.") or host == "::1"
