"""Fault benchmark of `lpr-sdk deploy`: interrupt real deploys over SSH and count devices left without a working model.

Starts a real OpenSSH server on 127.0.0.1 (a throwaway host key and client key, key-only login), a temporary
device root, and deploys two signed packages to it in turn. Each trial interrupts one deploy:

- kill-client: SIGKILL `lpr-sdk deploy` with its ssh/scp children after a random delay;
- kill-agent:  SIGKILL the device agent after a random delay once it holds the device lock;
- crash-at:    the agent SIGKILLs itself at a named step (LPR_DEPLOY_CRASH_AT, sent with ssh SendEnv), steps in turn.

After each trial the device's active slot must verify (signature, hashes, manifests, tensors) and read a gray crop,
both right away and once no agent runs any more; a trial where either fails counts as bricked.

    python benchmarks/deploy_faults.py --trials 50 [--bundle DIR] [--seed 0] [--json]

The bundle defaults to the shipped models/cn (or models/latin); without one, a tiny recogniser is trained first
(needs the train extra, about 30 s).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from firmware_tools.device_agent import CRASH_STEPS
from firmware_tools.keys import generate_keypair
from firmware_tools.packager import build_package
from firmware_tools.testing import (
    FAULT_MODES,
    LocalSshd,
    Trial,
    active_health,
    deploy_argv,
    fault_trial,
    missing_tools,
)

REPO = Path(__file__).resolve().parents[1]


def tiny_bundle(work: Path) -> Path:
    """Train and export a tiny recogniser (as the test fixture does); its chatter goes to stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import tiny_config

    from training.config import parse_config
    from training.export import quantize_run
    from training.synth.plates import render_dataset
    from training.train_recognizer import train

    with contextlib.redirect_stdout(sys.stderr):
        render_dataset(work / "synth", ["cn"], 48, seed=7)
        train(parse_config(tiny_config(work / "synth")), work / "run", verbose=False)
        quantize_run(
            work / "run", work / "synth", work / "tiny", eval_dir=work / "synth", eval_split="all", allow_drop=True
        )
    return work / "tiny"


def pick_bundle(arg: Path | None, work: Path) -> Path:
    if arg is not None:
        return arg
    for name in ("cn", "latin"):
        if (REPO / "models" / name / "manifest.json").is_file():
            return REPO / "models" / name
    print("no shipped bundle in models/: training a tiny one first", file=sys.stderr)
    return tiny_bundle(work)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--bundle", type=Path, help="bundle to package (default: models/cn, or a tiny trained one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = ap.parse_args()
    if (why := missing_tools()) is not None:
        print(f"error: {why}", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="lpr-faults-") as tmp:
        work = Path(tmp)
        bundle = pick_bundle(args.bundle, work)
        key, pub = generate_keypair(work / "fleet")
        pkgs = [build_package([bundle], work / f"v{i}.tar.gz", version=f"v{i}", sign_key=key).source for i in (1, 2)]
        root = work / "device"
        with LocalSshd(work / "sshd") as sshd:
            t0 = time.monotonic()
            first = subprocess.run(
                [*deploy_argv(sshd, root, pkgs[0]), "--pubkey", str(pub), "--json"], capture_output=True, text=True
            )
            span = time.monotonic() - t0
            if first.returncode != 0:
                print(f"error: the first deploy failed: {first.stderr.strip()}", file=sys.stderr)
                return 2
            agent_span = json.loads(first.stdout)["deploy"]["locked_s"]
            trials: list[Trial] = []
            t_start = time.monotonic()
            for i in range(args.trials):
                mode = FAULT_MODES[i % len(FAULT_MODES)]
                step = CRASH_STEPS[(i // len(FAULT_MODES)) % len(CRASH_STEPS)] if mode == "crash-at" else None
                trial = fault_trial(sshd, root, pkgs[(i + 1) % 2], mode, rng, span * 1.2, step, agent_span * 1.5)
                trials.append(trial)
                if trial.bricked:
                    print(f"BRICKED: trial {i} {trial}", file=sys.stderr)
            elapsed = time.monotonic() - t_start
            final = subprocess.run([*deploy_argv(sshd, root, pkgs[0]), "--allow-downgrade"], capture_output=True)
            final_ok = final.returncode == 0 and active_health(root) == (True, "v1")
    by_mode = {
        mode: {
            "trials": sum(t.mode == mode for t in trials),
            "kill_landed": sum(t.killed for t in trials if t.mode == mode),
            "active_after": dict(Counter(t.version for t in trials if t.mode == mode and not t.bricked)),
            "bricked": sum(t.bricked for t in trials if t.mode == mode),
        }
        for mode in FAULT_MODES
    }
    result = {
        "trials": len(trials),
        "bricked": sum(t.bricked for t in trials),
        "by_mode": by_mode,
        "crash_steps_covered": sorted({t.detail for t in trials if t.mode == "crash-at"}),
        "clean_deploy_after": final_ok,
        "full_deploy_s": round(span, 2),
        "agent_locked_s": agent_span,
        "mean_trial_s": round(elapsed / max(len(trials), 1), 2),
        "bundle": str(bundle),
        "seed": args.seed,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"deploy fault benchmark: real sshd on 127.0.0.1, bundle {bundle}, seed {args.seed}")
        print(f"{'mode':<12} {'trials':>6} {'kills landed':>12} {'bricked':>8}  active version after")
        for mode, m in by_mode.items():
            active = ", ".join(f"{v} x{n}" for v, n in sorted(m["active_after"].items()))
            print(f"{mode:<12} {m['trials']:>6} {m['kill_landed']:>12} {m['bricked']:>8}  {active}")
        print(f"crash steps covered: {', '.join(result['crash_steps_covered'])}")
        print(
            f"a full deploy took {span:.1f} s (the agent held the device {agent_span:.1f} s); "
            f"{result['mean_trial_s']:.1f} s per trial on average"
        )
        print(f"clean deploy after the last trial: {'ok' if final_ok else 'FAILED'}")
        print(f"trials: {result['trials']}  bricked: {result['bricked']}")
    return 1 if result["bricked"] or not final_ok else 0


if __name__ == "__main__":
    sys.exit(main())
