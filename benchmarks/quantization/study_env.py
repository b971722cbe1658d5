"""The quantization studies' run settings and machine record: thread count, environment header, progress lines.

Shared by run_quant_bench.py, run_qat_bench.py and run_distill_bench.py so their results files describe the
machine the same way.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from typing import Any

from edgecls.runtime.cpu_isa import detect_isa

#: onnxruntime intra-op threads for every latency measurement (batch 1).
THREADS = 2


def log(msg: str) -> None:
    # flushed: the studies run for tens of minutes, often piped to a file that is watched
    print(msg, flush=True)


def environment() -> dict[str, Any]:
    """The results file's machine header: CPU model and ISA, library versions, date, load at start."""
    import onnxruntime
    import torch

    from edgecls.runtime.bench.env import collect_environment

    cpu = collect_environment().cpu_model
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "isa": detect_isa().to_dict(),
        "onnxruntime": onnxruntime.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": dt.date.today().isoformat(),
        "threads": THREADS,
        "loadavg_start": os.getloadavg(),
    }
