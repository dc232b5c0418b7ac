"""``python -m exatrkx.cli``: the ``exatrkx`` command."""

from __future__ import annotations

from exatrkx.cli import main

main()
