"""How accuracy grows with the amount of real training data: runs of one recipe on nested shares of the real crops.

Each RUN_DIR is a finished recogniser run whose real sources keep a share of the plate texts (``fraction`` in its
config; see configs/experiments/cn_curve.yaml). For each run this prints the distinct real train plates it saw
and its greedy float plate / char accuracy on the held-out split, fits ``error = a * plates ** -b`` to the plate
errors (least squares in log-log) and says how many real plates the fit needs for each ``--target`` accuracy:

    python benchmarks/learning_curve.py runs/cn_curve/25 runs/cn_curve/50 runs/cn_curve/100 \\
        --data ../shared/data/crops --region cn [--target 0.98] [--json]

A fit through a few points of a few hundred plates is a rough guide, not a promise: it says whether more real
data is what a target needs, and about how much.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_run import evaluate_run  # noqa: E402

from sdk.dataset import in_fraction, read_labels  # noqa: E402
from training.config import load_config  # noqa: E402


def real_plates(run_dir: str, data: str, region: str) -> int:
    """Distinct ``region`` plate texts of ``data`` that the run trained on (its sources of ``data`` that are not
    the test split, each with its ``fraction``)."""
    cfg = load_config(Path(run_dir) / "config.yaml")
    root = Path(data).resolve()
    texts: set[str] = set()
    for stage in cfg.stages:
        for s in stage.data:
            if Path(s.path).resolve() == root and s.split != "test":
                rows = read_labels(s.path, s.split, s.regions or cfg.regions)
                texts |= {r.text for r in rows if r.region == region and in_fraction(r.text, s.fraction)}
    return len(texts)


def fit_power_law(plates: list[int], errors: list[float]) -> tuple[float, float]:
    """(a, b) of ``error = a * plates ** -b``, least squares on the logs (errors of 0 are left out)."""
    pts = [(math.log(n), math.log(e)) for n, e in zip(plates, errors, strict=True) if n > 0 and e > 0]
    if len(pts) < 2:
        raise ValueError("a fit needs at least two runs with some error")
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if sxx == 0:
        raise ValueError("the runs saw the same number of plates")
    slope = sum((x - mx) * (y - my) for x, y in pts) / sxx
    return math.exp(my - slope * mx), -slope


def plates_for(accuracy: float, a: float, b: float) -> int | None:
    """Real plates the fit needs for a plate ``accuracy`` (None if the fitted error does not fall with more)."""
    return round((a / (1 - accuracy)) ** (1 / b)) if b > 0 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--data", required=True)
    ap.add_argument("--region", required=True)
    ap.add_argument("--split", choices=("train", "test"), default="test")
    ap.add_argument("--target", type=float, action="append", help="plate accuracy to extrapolate to (repeatable)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = []
    for run in a.runs:
        m = evaluate_run(run, a.data, a.region, a.split)
        rows.append({"run": run, "real_plates": real_plates(run, a.data, a.region), **m})
    rows.sort(key=lambda r: r["real_plates"])
    coef, exp = fit_power_law([r["real_plates"] for r in rows], [1 - r["plate_accuracy"] for r in rows])
    needs = {str(t): plates_for(t, coef, exp) for t in a.target or [0.98]}
    if a.json:
        print(json.dumps({"runs": rows, "fit": {"a": coef, "b": exp}, "plates_needed": needs}))
        return
    print(f"{'run':<28} {'real plates':>11} {'n':>5} {'plate acc':>9} {'char acc':>8}")
    for r in rows:
        acc = f"{r['plate_accuracy']:>9.3f} {r['char_accuracy']:>8.3f}"
        print(f"{r['run']:<28} {r['real_plates']:>11} {r['n']:>5} {acc}")
    print(f"fit: plate error = {coef:.3g} * plates ** -{exp:.3f}")
    for t, n in needs.items():
        print(f"plate accuracy {t}: " + (f"about {n} real train plates" if n else "never: the error does not fall"))


if __name__ == "__main__":
    main()
