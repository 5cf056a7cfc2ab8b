"""Ablation runs (issue 4): train each row of an ablation config, export it to int8, measure it on real crops, and
write a markdown table (seed 003 Table 5 / seed 000 Table IX style) plus the GAN sample grid into the output folder.

Every row is an ordinary recogniser run in ``OUT/<row>`` (resumable, see :mod:`training.train_recognizer`); a row
whose run has finished is not trained again, and a row already measured (``ablation.json``) is not measured
again, so rerunning the command after an interruption continues where it stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdk.bench import bench_recognizer
from sdk.dataset import read_labels
from sdk.evaluate import evaluate_rows
from sdk.formats import ALPHABETS
from sdk.image import read_image
from sdk.recognizer import Recognizer
from training.config import ConfigError, DataSource, TrainConfig, _build, _read_yaml, _source, parse_config

DECODES = ("greedy", "beam+template")


@dataclass(frozen=True)
class Row:
    name: str
    label: str
    config: TrainConfig
    decode: tuple[str, ...] = ("beam+template",)
    table: bool = True
    init: str | None = None  # the row whose run starts this one
    forms: tuple[str, ...] = ("int8",)  # quantisation forms measured (training.export.FORMS)


@dataclass(frozen=True)
class AblationConfig:
    name: str
    out: Path
    calib: DataSource
    eval: DataSource
    rows: tuple[Row, ...]
    grid: dict[str, Any] | None = None


def load_ablation(path: str | Path) -> AblationConfig:
    """Read and validate an ablation YAML file (every row's recogniser config is validated up front)."""
    p = Path(path)
    base = p.resolve().parent
    d = _read_yaml(p)
    if not isinstance(d, dict):
        raise ConfigError(f"{p} must hold a mapping")
    if d.get("kind") != "ablation":
        raise ConfigError(f"{p} is not an ablation config (it needs kind: ablation)")
    for key in ("name", "out", "calib", "eval", "rows"):
        if key not in d:
            raise ConfigError(f"ablation config lacks {key!r}")
    out = (base / d["out"]).resolve()
    ev = _source(d["eval"], "eval", base)
    rows, names = [], set()
    for i, r in enumerate(d["rows"]):
        r = _build(Row, r, f"rows[{i}]")
        r.setdefault("init", None)
        if "name" not in r or "config" not in r or r["name"] in names:
            raise ConfigError(f"rows[{i}] needs a unique name and a config")
        decode = tuple(r.get("decode", ("beam+template",)))
        if set(decode) - set(DECODES):
            raise ConfigError(f"rows[{i}].decode: choose from {', '.join(DECODES)}")
        rc = dict(r["config"]) | {"name": f"{d['name']}-{r['name']}", "eval": d["eval"]}
        if r["init"] is not None:
            if r["init"] not in names:
                raise ConfigError(f"rows[{i}].init {r['init']!r} must name an earlier row")
            rc["init"] = str(out / r["init"])
        names.add(r["name"])
        forms = tuple(r.get("forms", ("int8",)))
        if set(forms) - {"int8", "dynamic"}:
            raise ConfigError(f"rows[{i}].forms: choose from int8, dynamic")
        label, table = r.get("label", r["name"]), r.get("table", True)
        rows.append(Row(r["name"], label, parse_config(rc, base), decode, table, r["init"], forms))
    grid = d.get("grid")
    if grid is not None:
        grid = {
            "synthetic": base / grid["synthetic"],
            "real": base / grid["real"],
            "gans": {k: base / v for k, v in grid.get("gans", {}).items()},
        }
    return AblationConfig(d["name"], out, _source(d["calib"], "calib", base), ev, tuple(rows), grid)


def _bundle_dir(run: Path, form: str) -> Path:
    return run / ("bundle" if form == "int8" else f"bundle_{form}")


def measure_form(cfg: AblationConfig, row: Row, run: Path, form: str) -> dict[str, Any]:
    """Export ``run`` in one quantisation ``form`` (into ``run/bundle`` or ``run/bundle_<form>``) and measure float
    and quantised reads for each of the row's decodings, plus the bundle's size and latency."""
    from training.export import float_reader, quantize_run
    from training.train_recognizer import load_trained

    bundle, beam_metrics = quantize_run(
        run, cfg.calib.path, _bundle_dir(run, form), calib_split=cfg.calib.split,
        eval_dir=cfg.eval.path, eval_split=cfg.eval.split, allow_drop=True, form=form,
    )  # fmt: skip
    rows = read_labels(cfg.eval.path, cfg.eval.split, cfg.eval.regions)
    results = {"beam+template": {"float": beam_metrics["float"], "int8": beam_metrics["int8"]}}
    if "greedy" in row.decode:
        tc, model = load_trained(run, for_export=True)
        rec = Recognizer(bundle, method="greedy")
        results["greedy"] = {
            "float": evaluate_rows(float_reader(model, ALPHABETS[tc.alphabet], tc.input_size, "greedy", False), rows),
            "int8": evaluate_rows(lambda img, region: rec.recognize(img, None), rows),
        }
    ops = {op["op_name"] for op in Recognizer(bundle).interpreter._get_ops_details()}
    return {
        **_bench(bundle, rows[0].path),
        "float_islands": bool(form == "int8" and ops & {"QUANTIZE", "DEQUANTIZE"}),
        "int8_drop_pp": beam_metrics["int8_drop_pp"],
        "decode": {k: results[k] for k in row.decode},
    }


def _bench(bundle: Any, image: str | Path) -> dict[str, Any]:
    """Size and 1-thread latency (median of 100 ``recognize()`` calls after 20 warm-up calls on a real crop)."""
    b = bench_recognizer(bundle, threads=(1,), warmup=20, runs=100, image=read_image(image))
    return {
        "model_bytes": b["model_bytes"],
        "latency_ms_median": b["results"][0]["latency_ms_median"],
        "invoke_ms_median": b["results"][0]["invoke_ms_median"],
    }


def rebench(cfg: AblationConfig) -> Path:
    """Time every measured row's bundles again (latency taken while other trainings ran is not worth much: run
    this on an idle machine) and rewrite the report."""
    image = read_labels(cfg.eval.path, cfg.eval.split, cfg.eval.regions)[0].path
    for row in cfg.rows:
        path = cfg.out / row.name / "ablation.json"
        if not path.is_file():
            continue
        res = json.loads(path.read_text())
        for form, f in res["forms"].items():
            f.update(_bench(_bundle_dir(cfg.out / row.name, form), image))
        path.write_text(json.dumps(res, indent=1))
    return write_report(cfg)


def measure_row(cfg: AblationConfig, row: Row, run: Path) -> dict[str, Any]:
    """Every quantisation form of a trained row (see :func:`measure_form`)."""
    from training.export import architecture_name

    history = json.loads((run / "metrics.json").read_text())["history"]
    seconds = run / "train_seconds.txt"
    return {
        "row": row.name,
        "label": row.label,
        "architecture": architecture_name(row.config),
        "steps": history[-1]["step"] if history else 0,
        "train_seconds": int(seconds.read_text()) if seconds.is_file() else None,
        "forms": {form: measure_form(cfg, row, run, form) for form in row.forms},
    }


def _cell(m: dict[str, Any], region: str, key: str) -> str:
    f = m["float"]["regions"].get(region, {}).get(key)
    q = m["int8"]["regions"].get(region, {}).get(key)
    return "–" if f is None or q is None else f"{f:.3f} / {q:.3f}"


def markdown_table(results: list[dict[str, Any]], regions: tuple[str, ...]) -> str:
    """One line per (row, quantisation form, decoding); cells are ``float / quantised``."""
    metrics = (("plate", "plate_accuracy"), ("char", "char_accuracy"), ("top-3", "top3_accuracy"))
    metrics += (("LCR", "length_consistency"),)
    head = ["method", "form", "decode"] + [f"{r} {name}" for r in regions for name, _ in metrics]
    head += ["bytes", "ms", "train min"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for res in results:
        minutes = f"{res['train_seconds'] / 60:.0f}" if res.get("train_seconds") else "–"
        for form, f in res["forms"].items():
            for dec, m in f["decode"].items():
                cells = [res["label"], form + (" (float islands)" if f["float_islands"] else ""), dec]
                cells += [_cell(m, r, key) for r in regions for _, key in metrics]
                cells += [f"{f['model_bytes']:,}", f"{f['latency_ms_median']:.2f}", minutes]
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_ablation(cfg: AblationConfig, only: tuple[str, ...] = (), verbose: bool = True) -> Path:
    """Train and measure every row (or the rows named in ``only``); write ``table.md`` and ``results.json``."""
    from training.train_recognizer import CKPT, train

    unknown = set(only) - {r.name for r in cfg.rows}
    if unknown:
        raise ConfigError(f"no row named {', '.join(sorted(unknown))} in {cfg.name}")
    cfg.out.mkdir(parents=True, exist_ok=True)
    pending = {r.name for r in cfg.rows if (not only or r.name in only) and r.table}
    pending -= {r.name for r in cfg.rows if (cfg.out / r.name / "ablation.json").is_file()}  # measured: done
    needed = pending | {r.init for r in cfg.rows if r.name in pending and r.init}
    for row in cfg.rows:
        if row.name not in needed:
            continue
        run = cfg.out / row.name
        missing = [s.path for st in row.config.stages for s in st.data if not Path(s.path, "labels.csv").is_file()]
        if missing:
            print(f"skip {row.name}: data not made yet ({', '.join(sorted(set(missing)))}); see the config header")
            continue
        if not (run / "final.weights.h5").is_file():
            t0 = time.perf_counter()
            # a checkpoint to go on from (a fresh clone keeps the committed records but not the weights)
            resume = (run / CKPT / "optimizer.npz").is_file()
            if verbose:
                print(f"== {row.name}: {'resume' if resume else 'train'} -> {run}", flush=True)
            train(None if resume else row.config, run, resume=resume, verbose=verbose)
            (run / "train_seconds.txt").write_text(f"{time.perf_counter() - t0:.0f}\n")
        if row.table:
            (run / "ablation.json").write_text(json.dumps(measure_row(cfg, row, run), indent=1))
    return write_report(cfg)


def write_report(cfg: AblationConfig) -> Path:
    """``table.md`` and ``results.json`` from every measured row, and the GAN sample grid when its runs exist."""
    results = [
        json.loads((cfg.out / r.name / "ablation.json").read_text())
        for r in cfg.rows
        if (cfg.out / r.name / "ablation.json").is_file()
    ]
    (cfg.out / "results.json").write_text(json.dumps(results, indent=1))
    table = cfg.out / "table.md"
    table.write_text(f"# {cfg.name}\n\n" + markdown_table(results, tuple(cfg.eval.regions or ())))
    g = cfg.grid
    if g and all((p / "config.yaml").is_file() for p in g["gans"].values()):
        from training.train_gan import sample_grid

        sample_grid(g["synthetic"], g["gans"], g["real"], cfg.out / "samples_grid.png", regions=cfg.eval.regions)
    return table
