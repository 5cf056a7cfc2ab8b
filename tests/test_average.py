"""Weight averages of runs (WiSE-FT, uniform soups): the mixed weights, the run folder it writes, the CLI, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import needs_tf

from lpr_cli import main

pytestmark = needs_tf


def _run_like(tiny_run: Path, out: Path, shift: float, width: float | None = None) -> Path:
    """A run folder with tiny_run's weights plus ``shift`` (or, with ``width``, a fresh model of another width)."""
    import yaml

    from training.config import load_config
    from training.train_recognizer import build_model, load_trained

    out.mkdir()
    cfg = yaml.safe_load((tiny_run / "config.yaml").read_text())
    if width is not None:
        cfg["model"]["width"] = width
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    if width is None:
        model = load_trained(tiny_run)[1]
        model.set_weights([w + shift for w in model.get_weights()])
    else:
        model = build_model(load_config(out / "config.yaml"))
    model.save_weights(out / "final.weights.h5")
    return out


def test_average_mixes_the_weights_into_a_run_folder(tiny_run, tmp_path):
    from training.average import average_runs
    from training.train_recognizer import load_trained

    tuned = _run_like(tiny_run, tmp_path / "tuned", shift=1.0)
    out = average_runs([tiny_run, tuned], tmp_path / "avg", shares=[0.75, 0.25])
    base, mixed = load_trained(tiny_run)[1].get_weights(), load_trained(out)[1].get_weights()
    assert len(base) == len(mixed)
    for b, m in zip(base, mixed, strict=True):
        np.testing.assert_allclose(m, b + 0.25, atol=1e-5)  # batch-norm statistics are mixed too
    assert json.loads((out / "average.json").read_text())["shares"] == [0.75, 0.25]
    assert (out / "config.yaml").read_text() == (tuned / "config.yaml").read_text()


def test_a_uniform_soup_of_three_runs(tiny_run, tmp_path):
    from training.average import average_runs
    from training.config import ConfigError
    from training.train_recognizer import load_trained

    a, b = _run_like(tiny_run, tmp_path / "a", shift=1.0), _run_like(tiny_run, tmp_path / "b", shift=2.0)
    out = average_runs([tiny_run, a, b], tmp_path / "soup")
    for w, m in zip(load_trained(tiny_run)[1].get_weights(), load_trained(out)[1].get_weights(), strict=True):
        np.testing.assert_allclose(m, w + 1.0, atol=1e-5)  # (0 + 1 + 2) / 3
    for runs, shares in (([tiny_run], None), ([tiny_run, a], [0.5, 0.6]), ([tiny_run, a], [1.5, -0.5])):
        with pytest.raises(ConfigError):
            average_runs(runs, tmp_path / "bad", shares)
    assert not (tmp_path / "bad").exists()


def test_average_cli_and_its_errors(tiny_run, tmp_path):
    tuned = _run_like(tiny_run, tmp_path / "tuned", shift=0.5)
    res = CliRunner().invoke(main, ["train", "average", str(tiny_run), str(tuned), "--out", str(tmp_path / "a")])
    assert res.exit_code == 0 and (tmp_path / "a" / "final.weights.h5").is_file(), res.output
    wider = _run_like(tiny_run, tmp_path / "wider", shift=0.0, width=0.5)
    res = CliRunner().invoke(main, ["train", "average", str(tiny_run), str(wider), "--out", str(tmp_path / "b")])
    assert res.exit_code != 0 and "not the same model" in res.output
    assert res.output.strip().count("\n") == 0  # one line, no traceback
    assert not (tmp_path / "b").exists()  # nothing written
    res = CliRunner().invoke(main, ["train", "average", str(tiny_run), str(tuned), "--out", "x", "--alpha", "2"])
    assert res.exit_code == 2
    three = [str(tiny_run), str(tuned), str(tiny_run)]
    res = CliRunner().invoke(main, ["train", "average", *three, "--out", "x", "--alpha", "0.5"])
    assert res.exit_code == 2 and "exactly two runs" in res.output
    shutil.rmtree(tmp_path / "a")


def test_a_run_without_weights_is_a_one_line_error(tiny_run, synth_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(tiny_run / "config.yaml", empty / "config.yaml")
    for args in (
        ["train", "average", tiny_run, empty, "--out", tmp_path / "a"],
        ["quantize", empty, "--calib", synth_dir, "--out", tmp_path / "b"],
    ):
        res = CliRunner().invoke(main, [str(a) for a in args])
        assert res.exit_code != 0 and "holds no trained weights" in res.output, res.output
        assert res.output.strip().count("\n") == 0
