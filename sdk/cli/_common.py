"""Helpers shared by the ``lpr-sdk`` commands."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from sdk.bundle import MANIFEST_NAME, MODELS_DIR
from sdk.errors import BundleError, LprError, RegionError
from sdk.formats import check_region
from sdk.pipeline import margins_for

TRAIN_HINT = 'this command needs the training extra: pip install "lpr-sdk[train]"'

bundle_argument = click.argument("bundle", type=click.Path(path_type=Path))
"""A bundle directory/archive or a shipped bundle's name (``cn``, ``latin``): not checked by click."""

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")

margins_option = click.option(
    "--single-read",
    "margins",
    is_flag=True,
    callback=lambda ctx, param, one: margins_for(one),
    help="Read each plate once, at the default margin, not at up to 5 margins until a read fits a plate format "
    "(faster; fewer plates read).",
)
"""``--single-read`` as the pipeline's ``margins``."""

SOURCE_HELP = (
    "picamera2, auto, a device index or /dev/videoN, a video file, an rtsp:// or http:// URL, or an image folder."
)
"""What ``--source`` accepts (``sdk.open_source``)."""

_F = TypeVar("_F", bound=Callable[..., Any])

_PIPELINE_OPTIONS = (
    click.option("--detector", default="detector", show_default=True, help="Detector folder or shipped name."),
    click.option(
        "--recognizer",
        "recognizers",
        multiple=True,
        default=("latin", "cn"),
        show_default=True,
        help="Recogniser bundle(s); repeat the option for several (the most confident read wins).",
    ),
    click.option("--region", help="Region for template post-filtering (cn, us, br, eu)."),
    click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Interpreter threads."),
    click.option("--max-frames", type=click.IntRange(min=1), help="Stop after this many frames."),
    click.option(
        "--min-confidence",
        type=click.FloatRange(0, 1),
        default=0.0,
        show_default=True,
        help="Drop reads less confident than this (0 to 1; 0 keeps every read).",
    ),
    margins_option,
    click.option(
        "--track",
        is_flag=True,
        help="Follow plates across frames: each read is tagged with its vehicle's track number, and when that "
        "vehicle is gone one fused read is given for it: the text most of its reads agree on and their mean "
        "confidence in it.",
    ),
)


def pipeline_options(fn: _F) -> _F:
    """The options of ``lpr-sdk run`` that ``examples/camera_loop.py`` shares, with the same names and defaults:
    ``--detector``, ``--recognizer`` (repeatable, as ``recognizers``), ``--region``, ``--threads``,
    ``--max-frames``, ``--min-confidence``, ``--single-read`` (as ``margins``) and ``--track``."""
    for option in reversed(_PIPELINE_OPTIONS):  # the first listed is shown first in --help
        fn = option(fn)
    return fn


second_look_option = click.option(
    "--second-look/--no-second-look",
    default=True,
    show_default=True,
    help="Read an unsure crop again at small shifts and zooms and rescore its candidates over all the reads "
    "(beam search only; slower on those crops).",
)


class MissingExtraError(LprError):
    """A command needs the optional training dependencies."""


def need_training(*modules: str) -> None:
    """Import the modules a training-side command needs; raise :class:`MissingExtraError` if one is missing.

    Args:
        *modules: module names (default ``tensorflow``).

    Raises:
        MissingExtraError: with the install hint.
    """
    for name in modules or ("tensorflow",):
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise MissingExtraError(TRAIN_HINT) from e


def resolve_shipped(path: Path) -> Path:
    """``path`` as given, or the shipped artefact it names under ``models/`` (``cn``, ``detector``,
    ``detector/proposal``) when no such path exists here."""
    if not path.exists() and not path.is_absolute() and (MODELS_DIR / path).exists():
        return MODELS_DIR / path
    return path


def shipped_recognizers() -> list[str]:
    """Names of the shipped recogniser bundles (``cn``, ``latin``): the folders of ``models/`` whose manifest says
    kind recognizer (the detector folder holds stage bundles, no manifest of its own)."""
    names = []
    for d in sorted(MODELS_DIR.iterdir()) if MODELS_DIR.is_dir() else ():
        try:
            kind = json.loads((d / MANIFEST_NAME).read_text(encoding="utf-8")).get("kind")
        except (OSError, ValueError):  # no manifest (not a bundle) or an unreadable one
            continue
        if kind == "recognizer":
            names.append(d.name)
    return names


def recognizer_path(bundle: Path) -> Path:
    """A recogniser BUNDLE argument resolved, or :class:`BundleError` naming the shipped recognisers if it does
    not exist."""
    path = resolve_shipped(bundle)
    if not path.exists():
        shipped = ", ".join(shipped_recognizers())
        raise BundleError(f"bundle {bundle} does not exist" + (f" (shipped recognisers: {shipped})" if shipped else ""))
    return path


def covered_region(region: str | None, covered: tuple[str, ...]) -> str | None:
    """Check ``--region``: a known region the bundle covers (or None).

    Raises:
        RegionError: unknown region, or one the bundle was not trained for.
    """
    if region is None:
        return None
    check_region(region)
    if region not in covered:
        raise RegionError(f"this bundle covers region(s) {', '.join(covered)}, not {region!r}")
    return region


def format_sizes(model_bytes: dict[str, int]) -> str:
    """Model sizes for a text summary: ``detector 564 KiB, lprnet-cn-v3 444 KiB``."""
    return ", ".join(f"{name} {size / 1024:.0f} KiB" for name, size in model_bytes.items())


def format_stages(stage_ms: dict[str, float]) -> str:
    """Per-stage latencies for a text summary, one decimal: ``detect 6.6, rectify 2.3`` (milliseconds)."""
    return ", ".join(f"{stage} {ms:.1f}" for stage, ms in stage_ms.items())


def echo_json(obj: Any) -> None:
    """Print ``obj`` as one line of JSON (non-ASCII kept)."""
    click.echo(json.dumps(obj, ensure_ascii=False))
