"""The package's errors; the command line turns each into one line and an exit code.

======================  =========  ====================================================
error                   exit code  meaning
======================  =========  ====================================================
:class:`InputError`     2          bad input from the user: a file, a value, a request
                                   the server refused as invalid (``INVALID_ARG``)
:class:`ServerUnavailable`  3      no server answers at the address, it is not ready,
                                   or it refuses the connection (TLS, authentication)
:class:`ServerFailure`  3          the server took the request and failed (a backend
                                   process died, an internal error, a timeout)
======================  =========  ====================================================

All derive from :class:`ExatrkxError`; the two server errors from :class:`RemoteError`.
"""

from __future__ import annotations

from pathlib import Path


class ExatrkxError(Exception):
    """Base of the package's errors.

    Attributes:
        exit_code: what the command line exits with.
    """

    exit_code = 1


class InputError(ExatrkxError, ValueError):
    """Bad input from a user: a file, a value or a request that cannot be used.

    The message names the problem and, where it applies, the file and line.
    """

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = None if path is None else str(path)
        self.line = line


class RejectedInput(InputError):
    """The server refused a request's tensors as invalid (it named the problem)."""


class RemoteError(ExatrkxError):
    """A request to the server did not give a result (base of the two server errors).

    Attributes:
        transient: the failure may pass (unreachable, timeout, a backend process died), so
            sending the request again can help.
        unreachable: no server answered at the address (down, restarting, wrong address).
    """

    exit_code = 3

    def __init__(self, message: str, transient: bool | None = None,
                 unreachable: bool = False) -> None:
        super().__init__(message)
        self.transient = unreachable if transient is None else transient
        self.unreachable = unreachable


class ServerUnavailable(RemoteError):
    """No usable server: nothing answers, it is not ready, or it refuses the connection
    (``unreachable`` tells the first two from a refusal)."""

    def __init__(self, message: str, transient: bool | None = None,
                 unreachable: bool = True) -> None:
        super().__init__(message, transient=transient, unreachable=unreachable)


class ServerFailure(RemoteError):
    """The server took the request and failed while serving it."""


class ServerError(ExatrkxError):
    """The embedded Triton server did not start, or died (the message ends with the tail of
    its log)."""

    exit_code = 3
