"""Recogniser training config: a YAML file loaded into frozen dataclasses with explicit validation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from sdk.dataset import SPLITS, Split
from sdk.detector import SCORE_MODES
from sdk.errors import LprError
from sdk.formats import ALPHABETS, REGIONS


class ConfigError(LprError, ValueError):
    """A training config that fails validation."""


@dataclass(frozen=True)
class DataSource:
    """A ``labels.csv`` folder; ``weight`` sets its share when a stage mixes sources. With ``augment``, ``tilt`` > 0
    also rotates and shears half the images by up to that many degrees, ``skew`` > 0 shows half of them as a
    detector's axis-aligned box of a plate turned up to that many degrees would, ``lowres`` > 1 blurs half of them
    as if the plate were up to that many times smaller, ``erase`` > 0 blanks a box of up to that fraction of the
    height on each side in half of them (random erasing); ``balance`` > 0 repeats rows holding rare characters (see
    :func:`training.data.pipeline.oversample_rare`); ``fraction`` < 1 keeps only that share of the plate texts
    (nested subsets, :func:`sdk.dataset.in_fraction`: how accuracy grows with the amount of real data);
    ``leave_out`` drops rows whose text starts with any of these prefixes (a province such as 粤, a layout's
    letters): train without a group, then evaluate on it, to measure generalisation to what was never seen."""

    path: str
    split: Split = "all"
    regions: tuple[str, ...] | None = None
    weight: float = 1.0
    augment: bool = True
    tilt: float = 0.0
    skew: float = 0.0
    lowres: float = 0.0
    erase: float = 0.0
    balance: float = 0.0
    fraction: float = 1.0
    leave_out: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stage:
    """One curriculum stage: train ``steps`` steps on a mix of sources at a peak learning rate."""

    name: str
    data: tuple[DataSource, ...]
    steps: int
    lr: float = 1e-3


@dataclass(frozen=True)
class ModelConfig:
    """``architecture``: lprnet (``variant`` basic|reduced, ``dropout``), crnn or lightcrnn (``hidden`` LSTM units,
    ``lstm_layers`` BiLSTMs: 2 as in the seed, 0 puts the dense head straight on the convolutional columns);
    ``width`` scales every channel count (LightCRNN's width multiplier alpha). ``stn``: LPRNet's spatial
    transformer (LocNet), switched on after ``stn_warmup`` training steps."""

    architecture: str = "lprnet"
    variant: str = "reduced"
    width: float = 1.0
    dropout: float = 0.3
    hidden: int = 256
    lstm_layers: int = 2
    stn: bool = False
    stn_warmup: int = 0


ARCHITECTURES = ("lprnet", "crnn", "lightcrnn")


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
    init: str | None = None  # a run folder whose trained weights start this run (layers matched by name)
    glyph_weight: float = 0.0  # > 0: glyph auxiliary decoder (seed 004), an MSE step after each CTC step
    # > 0: the final weights are the mean of the weights at every eval point from this step on (stochastic weight
    # averaging over the low-lr tail of the schedule); 0: the last weights
    average_from: int = 0

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


def _folder(cls: type, d: Any, where: str, base: Path) -> dict[str, Any]:
    """A data folder entry: known keys, ``path`` resolved against ``base``, a valid ``split``."""
    d = _build(cls, d, where)
    if "path" not in d:
        raise ConfigError(f"{where} lacks 'path'")
    path = Path(str(d["path"]))
    d["path"] = str(path if path.is_absolute() else (base / path).resolve())
    if d.get("split", "all") not in SPLITS:
        raise ConfigError(f"{where}.split must be one of {', '.join(SPLITS)}")
    return d


def _source(d: Any, where: str, base: Path) -> DataSource:
    d = _folder(DataSource, d, where, base)
    if d.get("regions") is not None:
        d["regions"] = tuple(d["regions"])
    for key in ("tilt", "skew", "lowres", "erase", "balance"):
        d[key] = float(d.get(key, 0.0))
    leave_out = d.get("leave_out") or ()
    d["leave_out"] = tuple(leave_out) if isinstance(leave_out, (list, tuple)) else (None,)
    if not all(isinstance(v, str) and v for v in d["leave_out"]):
        raise ConfigError(f"{where}: leave_out is a list of non-empty plate-text prefixes")
    d["fraction"] = float(d.get("fraction", 1.0))
    if not 0 < d["fraction"] <= 1:
        raise ConfigError(f"{where}: fraction is the share of plate texts kept, in (0, 1]")
    if min(d["tilt"], d["skew"], d["balance"]) < 0:
        raise ConfigError(f"{where}: tilt, skew and balance must be >= 0 (0: off)")
    if not 0 <= d["erase"] < 1:
        raise ConfigError(f"{where}: erase is a fraction of the height in [0, 1) (0: off)")
    if d["lowres"] != 0 and d["lowres"] < 1:
        raise ConfigError(f"{where}: lowres is a downscale factor >= 1 (0: off)")
    return DataSource(**d)


def _size(size: Any, where: str) -> tuple[int, int]:
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v >= 8 for v in size)):
        raise ConfigError(f"{where} must be [height, width] with both >= 8")
    return tuple(size)


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
    d["input_size"] = _size(d["input_size"], "input_size")
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
    arch = d["model"].architecture
    if arch not in ARCHITECTURES:
        raise ConfigError(f"model.architecture {arch!r} is not supported ({', '.join(ARCHITECTURES)})")
    if d["model"].stn and arch != "lprnet":
        raise ConfigError("model.stn is LPRNet's spatial transformer; it needs architecture lprnet")
    if float(d.get("glyph_weight", 0.0)) < 0:
        raise ConfigError("glyph_weight must be >= 0 (0: no glyph decoder)")
    if int(d.get("average_from", 0)) < 0:
        raise ConfigError("average_from must be >= 0 (0: no weight averaging)")
    if d.get("init") is not None:
        init = Path(str(d["init"]))
        d["init"] = str(init if init.is_absolute() else (base / init).resolve())
    h, w = d["input_size"]
    if arch != "lprnet" and (h % 16 or w % 4):
        raise ConfigError(f"{arch} needs input_size height a multiple of 16 and width a multiple of 4, got {h}x{w}")
    return TrainConfig(**d)


def _read_yaml(p: Path) -> Any:
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read config {p}: {e}") from e


def load_config(path: str | Path) -> TrainConfig:
    """Load and validate a YAML recogniser config file."""
    p = Path(path)
    return parse_config(_read_yaml(p), p.resolve().parent)


def save_config(cfg: TrainConfig | DetectorConfig, path: Path) -> None:
    def plain(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x

    path.write_text(yaml.safe_dump(plain(cfg.to_dict()), allow_unicode=True, sort_keys=False), encoding="utf-8")


# --- detector ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneSource:
    """A scenes folder (``labels.csv`` with plate corners); each frame is used ``copies`` times (scale jitter).
    ``roll`` > 0 turns half the copies in the image plane by up to that many degrees, corners with them (plates
    photographed rolled; :func:`training.data.detector_data.roll_frame`)."""

    path: str
    split: Split = "all"
    copies: int = 1
    roll: float = 0.0


@dataclass(frozen=True)
class ProposalConfig:
    input_size: tuple[int, int] = (256, 448)  # (height, width) of the letterboxed frame
    width: float = 1.0
    stride: int = 8
    box_scale: float = 32.0
    score_threshold: float = 0.15
    max_proposals: int = 16
    epochs: int = 12
    batch_size: int = 16
    lr: float = 2e-3
    # then, with qat_epochs > 0, a quantisation-aware fine-tune: every ReLU6 output rounded to the int8 grid the
    # exported model uses (straight-through gradient), so the weights learn to live with int8 activations
    qat_epochs: int = 0
    qat_lr: float = 2e-4


@dataclass(frozen=True)
class CornersConfig:
    input_size: tuple[int, int] = (48, 120)
    width: float = 1.0
    crop_aspect: float = 2.5
    crop_expand: float = 1.25
    coord_scale: float = 10.0
    score: str = "geometric_mean"  # final score: "corners" (the corners net's alone) or sqrt(proposal * corners)
    score_threshold: float = 0.5
    epochs: int = 15
    batch_size: int = 64
    lr: float = 2e-3
    # then, with mine_epochs > 0, a fine-tune on the trained proposal stage's own proposals added to the crops:
    # those on a plate (IoU >= MINE_POS_IOU, corners as targets) and those on nothing in fully labelled frames
    mine_epochs: int = 0
    mine_lr: float = 5e-4
    mine_int8: bool = False  # mine with the int8 proposal stage (the boxes the device will see), not the float one


@dataclass(frozen=True)
class DetectorConfig:
    """A detector run: the data, both cascade stages and the eval scenes; saved as the run's ``config.yaml``."""

    name: str
    data: tuple[SceneSource, ...]
    kind: str = "detector"
    eval: SceneSource | None = None
    proposal: ProposalConfig = field(default_factory=ProposalConfig)
    corners: CornersConfig = field(default_factory=CornersConfig)
    seed: int = 0
    init: str | None = None  # a finished detector run: each stage starts from that run's final weights

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scene_source(d: Any, where: str, base: Path) -> SceneSource:
    d = _folder(SceneSource, d, where, base)
    if int(d.get("copies", 1)) < 1:
        raise ConfigError(f"{where}.copies must be >= 1")
    d["roll"] = float(d.get("roll", 0.0))
    if not 0 <= d["roll"] <= 90:
        raise ConfigError(f"{where}.roll is a largest angle in degrees, in [0, 90] (0: off)")
    return SceneSource(**d)


def _sizes(d: dict[str, Any], where: str) -> dict[str, Any]:
    if "input_size" in d:
        d["input_size"] = _size(d["input_size"], f"{where}.input_size")
    return d


def parse_detector_config(d: Any, base: Path = Path(".")) -> DetectorConfig:
    """Validate a detector config mapping; relative data paths are resolved against ``base``."""
    d = _build(DetectorConfig, d, "config")
    if d.get("kind", "detector") != "detector":
        raise ConfigError("a detector config needs kind: detector")
    if "name" not in d or not d.get("data"):
        raise ConfigError("detector config needs 'name' and 'data'")
    d["data"] = tuple(_scene_source(x, f"data[{i}]", base) for i, x in enumerate(d["data"]))
    if d.get("eval") is not None:
        d["eval"] = _scene_source(d["eval"], "eval", base)
    d["proposal"] = ProposalConfig(**_sizes(_build(ProposalConfig, d.get("proposal", {}), "proposal"), "proposal"))
    d["corners"] = CornersConfig(**_sizes(_build(CornersConfig, d.get("corners", {}), "corners"), "corners"))
    if d["corners"].score not in SCORE_MODES:
        raise ConfigError(f"corners.score must be one of {', '.join(SCORE_MODES)}")
    if d["corners"].mine_epochs < 0:
        raise ConfigError("corners.mine_epochs must be >= 0 (0: no fine-tune on mined proposals)")
    if d["proposal"].qat_epochs < 0:
        raise ConfigError("proposal.qat_epochs must be >= 0 (0: no quantisation-aware fine-tune)")
    if d["proposal"].input_size[0] % 16 or d["proposal"].input_size[1] % 16:
        raise ConfigError("proposal.input_size must be multiples of 16")
    if d.get("init") is not None:
        init = Path(str(d["init"]))
        d["init"] = str(init if init.is_absolute() else (base / init).resolve())
    return DetectorConfig(**d)


def config_kind(path: str | Path) -> str:
    """``recognizer`` or ``detector``: which kind of run a config file (or run folder) describes."""
    p = Path(path)
    raw = _read_yaml(p / "config.yaml" if p.is_dir() else p)
    return str(raw.get("kind", "recognizer")) if isinstance(raw, dict) else "recognizer"


def load_detector_config(path: str | Path) -> DetectorConfig:
    """Load and validate a YAML detector config file."""
    p = Path(path)
    return parse_detector_config(_read_yaml(p), p.resolve().parent)


def open_run(cfg: Any, run_dir: str | Path, resume: bool, load: Any) -> tuple[Any, Path]:
    """Create a run folder holding ``cfg`` (saved as ``config.yaml``), or, resuming, read the folder's own config
    with ``load``; return the config and the folder."""
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    if resume:
        return load(run / "config.yaml"), run
    if cfg is None:
        raise ValueError("a config is needed unless resuming")
    save_config(cfg, run / "config.yaml")
    return cfg, run


# --- gan --------------------------------------------------------------------------------------------------------

GAN_LOSSES = ("cyclegan", "wgan")
# Per loss: (learning rate, critic steps per generator step) when the config leaves them out.
GAN_DEFAULTS = {"cyclegan": (2e-4, 1), "wgan": (5e-5, 5)}


@dataclass(frozen=True)
class GanConfig:
    """A CycleGAN (``loss: cyclegan``: LSGAN, Adam) or CycleWGAN (``loss: wgan``: Wasserstein, weight clipping,
    RMSProp) run translating ``synthetic`` plate crops to look like ``real`` ones; saved as the run's
    ``config.yaml``.

    ``lr`` and ``d_iter`` default per loss (cyclegan: 2e-4, 1; wgan: 5e-5, 5), ``identity_weight`` to
    0.5 * ``cycle_weight`` (it keeps the plates' colours); the saved config holds the values used. ``clip`` is
    used by wgan only; the sources' ``weight`` and ``augment`` are not used.
    """

    name: str
    synthetic: DataSource
    real: DataSource
    kind: str = "gan"
    image_size: tuple[int, int] = (32, 128)  # (height, width), multiples of 4
    loss: str = "cyclegan"
    steps: int = 2000  # generator steps
    batch_size: int = 8
    lr: float | None = None
    cycle_weight: float = 10.0
    identity_weight: float | None = None
    ngf: int = 16
    ndf: int = 16
    n_res: int = 3
    d_iter: int | None = None
    clip: float = 0.01
    sample_every: int = 200  # checkpoint + samples.png every this many steps
    seed: int = 0
    jit_compile: bool = True  # XLA steps: ~1.6x faster on a CPU, after a compile of about half a minute

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_gan_config(d: Any, base: Path = Path(".")) -> GanConfig:
    """Validate a GAN config mapping; relative data paths are resolved against ``base``."""
    d = _build(GanConfig, d, "config")
    if d.get("kind", "gan") != "gan":
        raise ConfigError("a GAN config needs kind: gan")
    for key in ("name", "synthetic", "real"):
        if key not in d:
            raise ConfigError(f"GAN config lacks {key!r}")
    d["synthetic"] = _source(d["synthetic"], "synthetic", base)
    d["real"] = _source(d["real"], "real", base)
    if "image_size" in d:
        d["image_size"] = _size(d["image_size"], "image_size")
    h, w = d.get("image_size", (32, 128))
    if h % 4 or w % 4:
        raise ConfigError(f"image_size must be multiples of 4, got {h}x{w}")
    loss = d.get("loss", "cyclegan")
    if loss not in GAN_LOSSES:
        raise ConfigError(f"loss must be one of {', '.join(GAN_LOSSES)}")
    lr, d_iter = GAN_DEFAULTS[loss]
    d["lr"] = float(d["lr"] if d.get("lr") is not None else lr)
    d["d_iter"] = d["d_iter"] if d.get("d_iter") is not None else d_iter
    d["cycle_weight"] = float(d.get("cycle_weight", 10.0))
    d["clip"] = float(d.get("clip", 0.01))
    idw = d.get("identity_weight")
    d["identity_weight"] = float(0.5 * d["cycle_weight"] if idw is None else idw)
    for key in ("steps", "batch_size", "ngf", "ndf", "n_res", "d_iter", "sample_every"):
        if key in d and (not isinstance(d[key], int) or d[key] < (0 if key == "n_res" else 1)):
            raise ConfigError(f"{key} must be an integer >= {0 if key == 'n_res' else 1}")
    if not isinstance(d.get("jit_compile", True), bool):
        raise ConfigError("jit_compile must be true or false")
    if d["lr"] <= 0 or d["clip"] <= 0 or d["cycle_weight"] < 0 or d["identity_weight"] < 0:
        raise ConfigError("lr and clip must be > 0, cycle_weight and identity_weight >= 0")
    return GanConfig(**d)


def load_gan_config(path: str | Path) -> GanConfig:
    """Load and validate a YAML GAN config file."""
    p = Path(path)
    return parse_gan_config(_read_yaml(p), p.resolve().parent)
