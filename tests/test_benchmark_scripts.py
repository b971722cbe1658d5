"""The benchmark scripts run end to end (tiny sizes, results in a temporary folder) and write what they claim."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fixtures_runtime import RuntimeModels

REPO = Path(__file__).resolve().parents[1]


def test_decode_scale_measures_time_difference_and_agreement(runtime_models: RuntimeModels, tmp_path) -> None:
    cmd = [sys.executable, str(REPO / "benchmarks" / "decode_scale.py"), "--images", "2", "--out", str(tmp_path),
           "--model", str(runtime_models.cnn)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (path,) = tmp_path.glob("decode_scale_photos_*.json")
    doc = json.loads(path.read_text())
    big = doc["sizes"]["4032x3024"]
    assert big["images"] == 2 and big["reduced_decode_shape"] == [378, 504]  # floor 37 px: 1/8 scale
    assert 0 < big["input_mean_abs_diff_reduced_vs_full"] < 0.2
    assert 0.0 <= big["top1_agreement"] <= 1.0
