"""The key policy of the server's control APIs (see ``docs/security.md``).

The control APIs (model repository, shared memory, statistics, trace, logging) answer only
requests that carry the server's key in :data:`exatrkx.contract.API_KEY_HEADER` (Triton's
restricted-protocol settings), and so does inference over HTTP: Triton 2.51 parses a JSON
request before checking it, and one request can crash the whole server (JSON nested 110 000
deep: SIGSEGV; a JSON tensor of shape [2^31, 3]: std::bad_alloc, SIGABRT). A restricted API
answers 403 before the body is read. The key is random per server unless given.
"""

from __future__ import annotations

import re
import secrets

from exatrkx.errors import InputError

#: Triton APIs behind the key on both protocols by default: everything but health, metadata,
#: model config and inference.
RESTRICTED_APIS = ("model-repository", "shared-memory", "statistics", "trace", "logging")
#: APIs behind the key on HTTP only, by default: inference (see the module docstring); gRPC
#: inference stays open to standard clients (its typed tensors do not reach that parser).
HTTP_RESTRICTED_APIS = ("inference",)
#: ``exatrkx serve --inference-key`` choices: which protocols' inference needs the key.
INFERENCE_KEY_CHOICES = ("http", "all", "none")
#: APIs Triton 2.51 can restrict.
KNOWN_APIS = ("health", "metadata", "inference", "shared-memory", "model-config",
              "model-repository", "statistics", "trace", "logging")
_KEY_RE = re.compile(r"[A-Za-z0-9._~-]{16,256}")


def restriction(inference_key: str = "http", open_control: bool = False
                ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(restricted on both protocols, restricted on HTTP only)`` for the command line's
    ``--inference-key`` (``http``, ``all`` or ``none``) and ``--open-control``.

    Raises:
        InputError: an unknown ``inference_key``.
    """
    if inference_key not in INFERENCE_KEY_CHOICES:
        raise InputError(f"--inference-key must be one of {', '.join(INFERENCE_KEY_CHOICES)}, "
                         f"got {inference_key!r}")
    both = () if open_control else RESTRICTED_APIS
    if inference_key == "all":
        return (*both, "inference"), ()
    return both, (HTTP_RESTRICTED_APIS if inference_key == "http" else ())


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
