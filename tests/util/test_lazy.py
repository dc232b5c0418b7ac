"""Public names that load their module on first use (``exatrkx``, ``exatrkx.serve``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import exatrkx
import exatrkx.serve


def test_a_name_loads_from_its_module_and_stays() -> None:
    from exatrkx.errors import InputError
    from exatrkx.serve.repository import RepositoryConfig

    assert exatrkx.InputError is InputError
    assert exatrkx.serve.RepositoryConfig is RepositoryConfig
    assert vars(exatrkx)["InputError"] is InputError  # the next use is a plain lookup


@pytest.mark.parametrize(("package", "name"), [(exatrkx, "exatrkx"),
                                               (exatrkx.serve, "exatrkx.serve")])
def test_an_unknown_name_is_an_attribute_error_and_dir_is_the_api(package: object,
                                                                   name: str) -> None:
    with pytest.raises(AttributeError, match=f"module '{name}' has no attribute 'nope'"):
        _ = package.nope  # type: ignore[attr-defined]
    assert dir(package) == sorted(package.__all__)  # type: ignore[attr-defined]


def test_importing_the_package_does_not_import_torch() -> None:
    code = "import sys, exatrkx, exatrkx.serve; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
