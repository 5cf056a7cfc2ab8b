"""Recogniser training config: a YAML file loaded into frozen dataclasses with explicit validation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from sdk.dataset import Split
from sdk.errors import LprError
from sdk.formats import ALPHABETS, REGIONS


class ConfigError(LprError, ValueError):
    """A training config that fails validation."""


@dataclass(frozen=True)
class DataSource:
    """A ``labels.csv`` folder; ``weight`` sets its share when a stage mixes sources."""

    path: str
    split: Split = "all"
    regions: tuple[str, ...] | None = None
    weight: float = 1.0
    augment: bool = True


@dataclass(frozen=True)
class Stage:
    """One curriculum stage: train ``steps`` steps on a mix of sources at a peak learning rate."""

    name: str
    data: tuple[DataSource, ...]
    steps: int
    lr: float = 1e-3


@dataclass(frozen=True)
class ModelConfig:
    architecture: str = "lprnet"
    variant: str = "reduced"
    width: float = 1.0
    dropout: float = 0.3


@dataclass(frozen=True)
class TrainConfig:
    """Everything a recogniser run needs; saved into the run folder as ``config.yaml``."""

    name: str
    alphabet: str
    regions: tuple[str, ...]
    input_size: tuple[int, int]  # (height, width)
    stages: tuple[Stage, ...]
    eval: DataSource | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    batch_size: int = 64
    eval_every: int = 500
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _build(cls: type, d: Any, where: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be a mapping")
    known = {f.name for f in fields(cls)}
    unknown = set(d) - known
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    return dict(d)


def _source(d: Any, where: str, base: Path) -> DataSource:
    d = _build(DataSource, d, where)
    if "path" not in d:
        raise ConfigError(f"{where} lacks 'path'")
    path = Path(str(d["path"]))
    d["path"] = str(path if path.is_absolute() else (base / path).resolve())
    if d.get("split", "all") not in ("all", "train", "test"):
        raise ConfigError(f"{where}.split must be all, train or test")
    if d.get("regions") is not None:
        d["regions"] = tuple(d["regions"])
    return DataSource(**d)


def parse_config(d: Any, base: Path = Path(".")) -> TrainConfig:
    """Validate a config mapping; relative data paths are resolved against ``base``."""
    d = _build(TrainConfig, d, "config")
    for key in ("name", "alphabet", "regions", "input_size", "stages"):
        if key not in d:
            raise ConfigError(f"config lacks {key!r}")
    if d["alphabet"] not in ALPHABETS:
        raise ConfigError(f"alphabet must be one of {', '.join(ALPHABETS)}")
    regions = tuple(d["regions"])
    bad = [r for r in regions if REGIONS.get(r) != d["alphabet"]]
    if not regions or bad:
        raise ConfigError(f"regions {list(bad or regions)} do not use alphabet {d['alphabet']!r}")
    d["regions"] = regions
    size = d["input_size"]
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v >= 8 for v in size)):
        raise ConfigError("input_size must be [height, width] with both >= 8")
    d["input_size"] = tuple(size)
    stages = []
    for i, s in enumerate(d["stages"] or ()):
        s = _build(Stage, s, f"stages[{i}]")
        if not s.get("data") or int(s.get("steps", 0)) < 1:
            raise ConfigError(f"stages[{i}] needs data and steps >= 1")
        s["data"] = tuple(_source(x, f"stages[{i}].data[{j}]", base) for j, x in enumerate(s["data"]))
        s["lr"] = float(s.get("lr", 1e-3))
        stages.append(Stage(**s))
    if not stages:
        raise ConfigError("config needs at least one stage")
    d["stages"] = tuple(stages)
    if d.get("eval") is not None:
        d["eval"] = _source(d["eval"], "eval", base)
    d["model"] = ModelConfig(**_build(ModelConfig, d.get("model", {}), "model"))
    if d["model"].architecture != "lprnet":
        raise ConfigError(f"model.architecture {d['model'].architecture!r} is not supported (lprnet)")
    return TrainConfig(**d)


def load_config(path: str | Path) -> TrainConfig:
    """Load and validate a YAML config file."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read config {p}: {e}") from e
    return parse_config(raw, p.resolve().parent)


def save_config(cfg: TrainConfig, path: Path) -> None:
    def plain(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x

    path.write_text(yaml.safe_dump(plain(cfg.to_dict()), allow_unicode=True, sort_keys=False), encoding="utf-8")
