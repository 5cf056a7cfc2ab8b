"""Accuracy breakdowns and intervals (sdk/evaluate.py) and the fit/val/test splits (sdk/dataset.py)."""

import cv2
import numpy as np
import pytest

from sdk.dataset import in_split, read_labels, split_of, write_labels
from sdk.decode import Read
from sdk.evaluate import evaluate_rows, plate_group, size_bucket, wilson_interval


def test_wilson_interval_matches_known_values():
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    lo, hi = wilson_interval(98, 100)
    assert lo == pytest.approx(0.9300, abs=1e-3) and hi == pytest.approx(0.9945, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_val_and_fit_cut_the_train_split_and_leave_test_alone():
    texts = [f"AB{i:05d}" for i in range(4000)]
    sides = {s: {t for t in texts if in_split(t, s)} for s in ("train", "test", "fit", "val")}
    assert sides["fit"] | sides["val"] == sides["train"] and not sides["fit"] & sides["val"]
    assert sides["test"] == {t for t in texts if split_of(t) == "test"} and not sides["train"] & sides["test"]
    assert 0.17 < len(sides["val"]) / len(sides["train"]) < 0.23  # VAL_PERCENT of the train texts
    assert in_split("皖A12345", "val") == in_split("皖A12345", "val")  # md5: the same on every machine


def test_evaluate_rows_breaks_down_by_source_group_and_size(tmp_path):
    rows = []
    for i, (text, region, width, source) in enumerate(
        [("皖A12345", "cn", 94, "CCPD x"), ("粤B12345", "cn", 94, "EasyPR y"), ("ABC1234", "br", 300, "openalpr z")]
    ):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((24, width, 3), 128, np.uint8))
        rows.append((f"{i}.png", text, region, source))
    write_labels(tmp_path, rows)

    def read(img: np.ndarray, region: str) -> Read:  # reads every plate as 皖A12345
        return Read("皖A12345", 0.9, (), None, region)

    m = evaluate_rows(read, read_labels(tmp_path))
    assert m["overall"]["plate_accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["sources"]["CCPD"]["plate_accuracy"] == 1.0 and m["sources"]["EasyPR"]["plate_accuracy"] == 0.0
    assert set(m["groups"]) == {"cn/皖", "cn/粤", f"br/{plate_group('ABC1234', 'br')}"}
    assert m["sizes"] == {
        "60-119": {"n": 2, "plate_accuracy": 0.5, "plate_accuracy_ci95": list(wilson_interval(1, 2))},
        ">=240": {"n": 1, "plate_accuracy": 0.0, "plate_accuracy_ci95": list(wilson_interval(0, 1))},
    }


def test_size_buckets_and_groups():
    assert [size_bucket(w) for w in (40, 60, 119, 120, 240, 999)] == [
        "<60",
        "60-119",
        "60-119",
        "120-239",
        ">=240",
        ">=240",
    ]
    assert plate_group("湘AT1203", "cn") == "湘" and plate_group("???", "us") == "other"


def test_calibration_finds_the_threshold_that_keeps_the_target_precision():
    from sdk.evaluate import calibration

    # 200 reads at 0.999 (one wrong), 100 at 0.97 (ten wrong), 50 at 0.3 (forty wrong)
    pairs = [("A", Read("A" if i else "B", 0.999, (), None, None)) for i in range(200)]
    pairs += [("A", Read("A" if i >= 10 else "B", 0.97, (), None, None)) for i in range(100)]
    pairs += [("A", Read("A" if i >= 40 else "B", 0.3, (), None, None)) for i in range(50)]
    cal = calibration(pairs)
    assert cal["at_0.99"] == {"coverage": round(200 / 350, 4), "precision": 0.995}
    assert cal["threshold_for_0.995"] == 0.999 and cal["coverage_at_0.995"] == round(200 / 350, 4)
    assert [b["n"] for b in cal["reliability"]] == [50, 100, 200]
    assert calibration(pairs, target=0.9999)["coverage_at_0.9999"] == 0.0
