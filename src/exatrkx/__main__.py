"""``python -m exatrkx``: the ``exatrkx`` command."""

from __future__ import annotations

from exatrkx.cli import main

main()
