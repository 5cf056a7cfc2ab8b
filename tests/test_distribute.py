"""Data-parallel training (``training.distribute``): two replicas on one machine, and a two-worker cluster.

Each run is a fresh process: the CPU is split into two logical devices, or TF_CONFIG names the cluster, before
TensorFlow starts.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs_tf

pytestmark = needs_tf

ROOT = Path(__file__).resolve().parents[1]

# argv: data folder, run folder, "mirrored" | "multi-worker" | "multi-worker-resume" | "detector"; prints the result
# as JSON.
SCRIPT = """
import json, sys
from pathlib import Path
import tensorflow as tf
from training.distribute import is_chief, make_strategy
data, run, kind = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
if kind.startswith("multi-worker"):
    strategy = make_strategy("multi-worker")
else:  # two replicas on one machine
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
if kind == "detector":
    from training.config import parse_detector_config
    from training.synth.scenes import render_scene_dataset
    from training.train_detector import train_detector
    render_scene_dataset(data, 6, ["us", "br"], seed=3, size=(320, 192))
    cfg = parse_detector_config({
        "name": "tiny-det", "data": [{"path": str(data)}],
        "proposal": {"input_size": [64, 112], "width": 0.25, "epochs": 2, "batch_size": 8, "box_scale": 12},
        "corners": {"input_size": [24, 64], "width": 0.25, "epochs": 2, "batch_size": 16},
    })
    history = train_detector(cfg, run, verbose=False, strategy=strategy)["history"]
    print("RESULT", json.dumps({"replicas": strategy.num_replicas_in_sync, "history": history}))
    sys.exit()
from tests.conftest import tiny_config
from training.config import ConfigError, parse_config
from training.train_recognizer import train
if kind == "multi-worker-resume":
    try:
        train(None, run, resume=True, verbose=False, strategy=strategy)
    except ConfigError as e:
        print("RESULT", json.dumps({"error": str(e)}))
    sys.exit()
config = tiny_config(data, steps=6)
config["eval_every"] = 3
metrics = train(parse_config(config), run, verbose=False, strategy=strategy)
if kind == "mirrored":  # resume under the same strategy, two steps more
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("steps: 6", "steps: 8"))
    metrics = train(None, run, resume=True, verbose=False, strategy=strategy)
losses = [h["loss"] for h in metrics["history"]]
print("RESULT", json.dumps({"replicas": strategy.num_replicas_in_sync, "chief": is_chief(strategy), "losses": losses}))
"""


def _spawn(data: Path, run: Path, kind: str, tf_config: dict | None = None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    cmd = [sys.executable, "-c", SCRIPT, str(data), str(run), kind]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _result(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=600)
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, out[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture(scope="module")
def mirrored(synth_dir, tmp_path_factory) -> tuple[dict, Path]:
    run = tmp_path_factory.mktemp("mirrored")
    return _result(_spawn(synth_dir, run, "mirrored")), run


def test_mirrored_trains_over_two_replicas_and_resumes(mirrored):
    result, run = mirrored
    assert result["replicas"] == 2 and result["chief"]
    assert [h["step"] for h in json.loads((run / "state.json").read_text())["history"]] == [3, 6, 8]
    assert result["losses"][-1] < result["losses"][0]
    assert (run / "final.weights.h5").is_file() and (run / "metrics.json").is_file()


def test_two_workers_train_in_step_and_only_the_chief_writes(mirrored, synth_dir, tmp_path):
    """Two one-replica workers compute what one machine's two replicas do (the same global batch, split the same
    way, gradients summed over the cluster): the same loss at every step, reported by both workers."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    tasks = [{"cluster": cluster, "task": {"type": "worker", "index": i}} for i in range(2)]
    procs = [_spawn(synth_dir, tmp_path / f"w{i}", "multi-worker", task) for i, task in enumerate(tasks)]
    chief, worker = (_result(p) for p in procs)
    assert (chief["chief"], worker["chief"]) == (True, False)
    assert chief["replicas"] == worker["replicas"] == 2
    assert chief["losses"] == worker["losses"]
    assert chief["losses"] == pytest.approx(mirrored[0]["losses"][:2], rel=1e-4)
    assert (tmp_path / "w0" / "final.weights.h5").is_file()
    assert not (tmp_path / "w1" / "final.weights.h5").exists() and not (tmp_path / "w1" / "checkpoint").exists()

    # Resuming where worker 1 cannot see the chief's checkpoint: both stop, saying why, instead of training apart.
    procs = [_spawn(synth_dir, tmp_path / f"w{i}", "multi-worker-resume", task) for i, task in enumerate(tasks)]
    for result in (_result(p) for p in procs):
        assert "the workers resume at different steps" in result["error"] and "their mean 3)" in result["error"]


def test_the_global_batch_must_split_over_the_replicas():
    from training.config import ConfigError
    from training.distribute import check_batch_split, make_strategy

    check_batch_split(16, 2)
    check_batch_split(15, 1)
    with pytest.raises(ConfigError, match="batch_size 15 does not split over 2 replicas"):
        check_batch_split(15, 2)
    with pytest.raises(ConfigError, match="unknown strategy"):
        make_strategy("horovod")


def test_the_detector_trains_over_two_replicas(tmp_path):
    result = _result(_spawn(tmp_path / "scenes", tmp_path / "run", "detector"))
    assert result["replicas"] == 2
    assert [len(result["history"][stage]) for stage in ("proposal", "corners")] == [2, 2]
    assert result["history"]["corners"][-1]["loss"] < result["history"]["corners"][0]["loss"]
    assert all((tmp_path / "run" / stage / "final.weights.h5").is_file() for stage in ("proposal", "corners"))
