"""The three nets together: build, save, load, TorchScript export.

A weights folder holds ``embed.pt``, ``filter.pt``, ``gnn.pt`` (state dicts) and
``metadata.json`` = ``{"config": PipelineConfig.to_dict(), ...anything else}``; the config
decides the nets' shapes and the pipeline's radius, k and cuts. ``export_torchscript``
writes ``embed.ts``, ``filter.ts``, ``gnn.ts`` (scripted modules, CPU) for serving.

Weights are named by a folder or by the name of a set shipped in the package: the default
set lives in ``exatrkx/weights/``, any other in ``exatrkx/weights/<name>/``
(:func:`resolve_weights`).
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from exatrkx.config import PipelineConfig
from exatrkx.contract import NET_STAGES
from exatrkx.core.stages.embed import EmbeddingNet
from exatrkx.core.stages.filter import FilterNet
from exatrkx.core.stages.gnn import InteractionGNN
from exatrkx.core.stages.layerpairs import LayerEmbedding
from exatrkx.errors import InputError
from exatrkx.util.files import atomic_write_text
from exatrkx.util.jsonsafe import dumps

#: The file of each net in a weights folder (state dict; ``.ts`` for TorchScript).
NET_FILES: dict[str, str] = {name: name for name in NET_STAGES}
#: Name of the default shipped weight set.
DEFAULT_WEIGHTS = "default"
_SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
METADATA_FILE = "metadata.json"


@dataclass
class Nets:
    """The pipeline's three nets (plain ``nn.Module`` or scripted)."""

    embed: nn.Module
    filter: nn.Module
    gnn: nn.Module

    def to(self, device: torch.device | str) -> Nets:
        """Move all three (in place) and return self."""
        for m in (self.embed, self.filter, self.gnn):
            m.to(device)
        return self

    def eval(self) -> Nets:
        """Evaluation mode for all three; returns self."""
        for m in (self.embed, self.filter, self.gnn):
            m.eval()
        return self

    def items(self) -> list[tuple[str, nn.Module]]:
        return [("embed", self.embed), ("filter", self.filter), ("gnn", self.gnn)]


@contextlib.contextmanager
def quiet_jit() -> Iterator[None]:
    """Silence torch's deprecation warnings of ``torch.jit.script/load/freeze``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning,
                                message=r".*torch\.jit.*deprecated")
        yield


def default_weights_dir() -> Path:
    """The weights shipped in the package (``exatrkx/weights/``)."""
    return Path(str(resources.files("exatrkx") / "weights"))


def shipped_weight_sets() -> list[str]:
    """Names of the weight sets shipped in the package (``default`` first)."""
    base = default_weights_dir()
    names = sorted(p.parent.name for p in base.glob(f"*/{METADATA_FILE}"))
    return [DEFAULT_WEIGHTS, *names]


def resolve_weights(weights: str | Path | None) -> Path:
    """The folder of a weights argument: None or ``"default"`` -> the shipped default set;
    the name of another shipped set (``"pu200"``) -> its folder; anything else -> a folder.

    A folder that exists wins over a set of the same name.
    """
    if weights is None or str(weights) == DEFAULT_WEIGHTS:
        return default_weights_dir()
    path = Path(weights)
    if path.exists():
        return path
    name = str(weights)
    if _SET_NAME.fullmatch(name) and (default_weights_dir() / name / METADATA_FILE).is_file():
        return default_weights_dir() / name
    return path


def build_models(config: PipelineConfig | None = None, seed: int = 0) -> Nets:
    """New nets with the shapes of ``config``, randomly initialised from ``seed``.

    The global torch RNG is left as it was.
    """
    cfg = config or PipelineConfig()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        embed = (LayerEmbedding(cfg.layers) if cfg.embed.kind == "layers"
                 else EmbeddingNet(cfg.embed))
        nets = Nets(embed, FilterNet(cfg.filter), InteractionGNN(cfg.gnn))
    return nets.eval()


def save_models(nets: Nets, config: PipelineConfig, directory: str | Path,
                metadata: dict[str, Any] | None = None) -> Path:
    """Write the three state dicts and ``metadata.json`` into ``directory``; returns it."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for name, module in nets.items():
        state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        torch.save(state, out / f"{NET_FILES[name]}.pt")
    meta = dict(metadata or {})
    meta["config"] = config.to_dict()
    atomic_write_text(out / METADATA_FILE, dumps(meta, indent=2, sort_keys=True) + "\n")
    return out


def read_metadata(directory: str | Path | None = None) -> dict[str, Any]:
    """``metadata.json`` of a weights folder or shipped set (default: the shipped weights)."""
    d = resolve_weights(directory)
    path = d / METADATA_FILE
    if not path.is_file():
        raise InputError(
            "no trained weights here (expected embed.pt, filter.pt, gnn.pt, metadata.json); "
            "train them with `exatrkx train`, pass a weights folder or a shipped set "
            f"({', '.join(shipped_weight_sets())})", d)
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read weights metadata ({exc})", path) from None
    if not isinstance(meta, dict) or "config" not in meta:
        raise InputError("weights metadata has no 'config'", path)
    return meta


def load_models(directory: str | Path | None = None,
                device: torch.device | str = "cpu") -> tuple[Nets, PipelineConfig]:
    """Load the nets and their config from a weights folder or shipped set (default: the
    shipped default set; see :func:`resolve_weights`).

    Raises:
        InputError: the folder lacks a file, a file does not fit the config, or the config
            has an unknown or bad setting.
    """
    d = resolve_weights(directory)
    try:
        config = PipelineConfig.from_dict(read_metadata(d)["config"])
    except InputError as exc:
        raise InputError(f"weights metadata: {exc}", d / METADATA_FILE) from None
    nets = build_models(config)
    for name, module in nets.items():
        path = d / f"{NET_FILES[name]}.pt"
        if not path.is_file():
            raise InputError("missing weights file", path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            module.load_state_dict(state)
        except (RuntimeError, OSError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"cannot load weights ({first})", path) from None
    return nets.to(device).eval(), config


def script_models(nets: Nets) -> Nets:
    """TorchScript versions of the three nets (same outputs, less Python overhead)."""
    with quiet_jit():
        return Nets(*(torch.jit.script(m.eval()) for _, m in nets.items()))


def export_torchscript(nets: Nets, directory: str | Path) -> dict[str, Path]:
    """Write ``embed.ts``, ``filter.ts``, ``gnn.ts`` (scripted, on CPU) into ``directory``.

    Each takes the stage's tensors: ``embed(x [N,3]) -> [N,D]``,
    ``filter(x [N,3], edges [2,E]) -> logits [E]``, ``gnn(x [N,3], edges [2,E]) -> logits [E]``.
    Load them with :func:`load_torchscript`.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, module in nets.items():
        devices = {p.device for p in (*module.parameters(), *module.buffers())}
        if devices - {torch.device("cpu")}:
            raise ValueError(f"export needs the {name} net on the CPU, found {devices}")
        with quiet_jit():
            scripted = torch.jit.script(module.eval())
        path = out / f"{NET_FILES[name]}.ts"
        scripted.save(str(path))
        paths[name] = path
    return paths


def load_torchscript(path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """Load one exported ``.ts`` module in evaluation mode."""
    with quiet_jit():
        module = torch.jit.load(str(path), map_location=device)
    return module.eval()
