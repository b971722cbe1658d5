"""``edgecls selftest``: the on-device parity check on real exported models (fp32, fp16, int8) and its failures
on a tampered model or golden file, and the target-mismatch warning of ``run``/``selftest``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fixtures_runtime import add_contract, run_edgecls

from edgecls.runtime.contract.model_contract import ModelContract
from edgecls.runtime.cpu_isa import detect_isa, target_mismatch
from edgecls.runtime.device.golden_file import find_golden


def rows(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.fixture
def bundle(exported_tiny: Path, tmp_path: Path) -> Path:
    """A copy of a real export (model.onnx, model.int8.onnx, model.fp16.onnx, model.golden.npz) to tamper with."""
    out = tmp_path / "models"
    out.mkdir()
    for f in exported_tiny.iterdir():
        if f.suffix in (".onnx", ".npz"):
            shutil.copy2(f, out / f.name)
    return out


def test_selftest_library_call_checks_every_model_of_the_folder(bundle: Path):
    from edgecls.runtime.device.selftest import SelftestOptions, selftest

    found = selftest(SelftestOptions(target=bundle, provider="cpu", threads=1))
    assert sorted(Path(r.model).name for r in found) == ["model.fp16.onnx", "model.int8.onnx", "model.onnx"]
    assert all(r.passed and r.provider.startswith("CPU") for r in found), [r.problems for r in found]


def test_selftest_passes_for_fp32_fp16_int8_and_prints_the_table(bundle: Path):
    r = run_edgecls("selftest", str(bundle), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    got = {Path(row["model"]).name: row for row in rows(r.stdout)}
    assert set(got) == {"model.onnx", "model.int8.onnx", "model.fp16.onnx"}
    assert {row["variant"] for row in got.values()} == {"fp32", "int8", "fp16"}
    fp32 = got["model.onnx"]
    assert fp32["passed"] and fp32["agreement"] == 1.0 and fp32["max_abs_diff"] <= 1e-4  # same machine as export
    assert fp32["preprocess_max_abs_diff"] <= 1e-6 and fp32["images"] == 8
    assert "CPUExecutionProvider" in fp32["provider"] and fp32["isa"].startswith(detect_isa().isa)
    assert all(row["ms_per_image"] > 0 for row in got.values())
    table = run_edgecls("selftest", str(bundle))
    assert table.returncode == 0
    for column in ("model", "provider", "ISA found", "max |d|", "agreement", "ms/image"):
        assert column in table.stdout
    assert "3 of 3 models match" in table.stdout


def test_a_tampered_golden_file_is_a_mismatch(bundle: Path):
    golden = bundle / "model.golden.npz"
    with np.load(golden) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["logits"] = arrays["logits"][:, ::-1].copy()  # every image's answer moves to another class
    np.savez_compressed(golden, **arrays)
    r = run_edgecls("selftest", str(bundle), "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    got = {Path(row["model"]).name: row for row in rows(r.stdout)}
    assert not got["model.onnx"]["passed"] and not got["model.int8.onnx"]["passed"]
    assert any("agreement" in p for p in got["model.int8.onnx"]["problems"])
    table = run_edgecls("selftest", str(bundle / "model.onnx"))
    assert table.returncode == 1 and "MISMATCH" in table.stdout and "mismatch: model.onnx" in table.stdout


def test_a_tampered_model_is_a_mismatch(bundle: Path):
    import onnx
    from onnx import numpy_helper

    path = bundle / "model.onnx"
    m = onnx.load(str(path))
    init = max(m.graph.initializer, key=lambda t: int(np.prod(t.dims)))  # the largest weight tensor
    w = numpy_helper.to_array(init).copy()
    w.flat[: w.size // 50] *= 1.05  # 2% of one layer's weights off by 5%: a corrupted copy, still a valid file
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(m, str(path))
    r = run_edgecls("selftest", str(path), "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    (row,) = rows(r.stdout)
    assert not row["passed"] and any("max |d|" in p for p in row["problems"])
    assert row["max_abs_diff"] > row["tolerance"]["max_abs_diff"]


def test_a_model_without_golden_file_fails_with_one_line(bundle: Path, tmp_path: Path):
    lone = tmp_path / "lone.onnx"
    shutil.copy2(bundle / "model.onnx", lone)
    assert find_golden(lone) is None and find_golden(bundle / "model.int8.onnx") == bundle / "model.golden.npz"
    r = run_edgecls("selftest", str(lone), "--json")
    assert r.returncode == 1
    (row,) = rows(r.stdout)
    assert "no golden file" in row["problems"][0]
    missing = run_edgecls("selftest", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and missing.stderr.strip().startswith("error:") and "Traceback" not in missing.stderr


ARM = detect_isa("Features\t: fp asimd asimddp\n", "aarch64")
VNNI = detect_isa("flags\t: avx2 avx512_vnni\n", "x86_64")
AVX2 = detect_isa("flags\t: avx2\n", "x86_64")


def _q(target: str) -> dict:
    return {"quantization": {"target": target, "activation_type": "QInt8" if target == "arm64" else "QUInt8",
                             "weight_type": "QInt8", "reduce_range": target == "x86-avx2"}}


@pytest.mark.parametrize(
    ("made_for", "cpu", "cost"),
    [("x86-vnni", ARM, "--target arm64"), ("x86-avx2", ARM, "7-bit weights"), ("arm64", AVX2, "--target x86-avx2"),
     ("arm64", VNNI, "--target x86-vnni"), ("x86-avx2", VNNI, "7-bit weights")],
)
def test_target_mismatch_says_what_it_costs(made_for: str, cpu, cost: str):
    message = target_mismatch(_q(made_for), cpu)
    assert message is not None and f"made for {made_for}" in message and cost in message


def test_no_mismatch_warning_on_the_right_cpu_or_for_float_files():
    assert target_mismatch(_q("arm64"), ARM) is None and target_mismatch(_q("x86-vnni"), VNNI) is None
    assert target_mismatch(_q("x86-avx2"), AVX2) is None and target_mismatch({"variant": "fp32"}, ARM) is None
    # a VNNI file on AVX2 is the saturation notice's (runtime/terminal/int8_notices.py), not said twice
    assert target_mismatch(_q("x86-vnni"), AVX2) is None


def test_an_arm64_process_reads_arm_features_even_when_cpuinfo_is_the_hosts():
    # qemu-user shows the x86 host's /proc/cpuinfo to an arm64 process: its x86 flags must not make it "x86-vnni"
    profile = detect_isa("flags\t: fpu avx2 avx512f avx512_vnni amx_int8\n", "aarch64")
    assert profile.isa == "arm" and profile.target == "arm64"
    assert detect_isa("Features\t: fp asimd asimddp\n", "aarch64").isa == "arm-dotprod"


def test_run_and_selftest_warn_when_the_int8_file_was_made_for_another_cpu(bundle: Path, exported_tiny: Path):
    from edgecls.runtime.inference.classifier import Classifier

    here = detect_isa()
    other = "arm64" if here.target.startswith("x86") else "x86-vnni"
    path = bundle / "model.int8.onnx"
    contract: ModelContract = Classifier(path).contract
    q = {**contract.provenance["quantization"], "target": other}
    add_contract(path, contract.with_provenance(quantization=q))
    r = run_edgecls("selftest", str(path), "--json")
    assert r.returncode == 0, r.stdout + r.stderr  # still correct, only not made for this CPU
    (row,) = rows(r.stdout)
    assert any(f"int8 made for {other}" in w and "expected off-device" in w for w in row["warnings"])
    assert not any("quantize" in w for w in row["warnings"])  # a file made for another device is not wrong
    golden = np.load(bundle / "model.golden.npz")
    image = bundle / "digit.png"
    import cv2

    cv2.imwrite(str(image), golden["images"][0])
    run = run_edgecls("run", str(path), str(image), "--json")
    assert run.returncode == 0 and f"int8 made for {other}" not in run.stderr  # said once per file: by selftest
