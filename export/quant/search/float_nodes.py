"""The float-node search: when no trial fits the budget, the fewest nodes to keep in float so that one does.

Per-node sensitivity first - the logit error on a subset of the search images with one node computing in float
(``sensitivity``, graph surgery on the QDQ graph), cached on disk when a cache folder is given - then the k most
sensitive nodes are kept in float, k = 1, 2, 4, ... until the budget holds, and bisected back. The nodes kept
together are whole float units (``qdq.static_quantizer.float_units``: a node and the compute nodes that produce
its inputs), never more than ``MAX_FLOAT_FRACTION`` of the quantized nodes. The search starts from the repaired
recipe without reconstruction (``repairs.steps.Repaired.base``): each of its trials would learn every layer
again, and the sensitivity must be measured on the graph it edits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np

from edgecls.export.quant.grading.image_sets import evenly_spaced
from edgecls.export.quant.qdq.static_quantizer import float_units, quantized_compute_nodes
from edgecls.export.quant.recipes import QuantRecipe
from edgecls.export.quant.search.sensitivity import rank_nodes
from edgecls.export.quant.search.trials import Trial, TrialBench, eligible, fits

#: Never keep more than this share of the quantized nodes in float.
MAX_FLOAT_FRACTION = 0.5


def _cache_file(bench: TrialBench, recipe: QuantRecipe, sub_inputs: np.ndarray, cache_dir: Path) -> Path:
    quantizer = bench.quantizer_for(recipe)
    h = hashlib.sha256(Path(quantizer.float_path(recipe)).read_bytes())
    h.update(repr(recipe.key()).encode())
    h.update(np.ascontiguousarray(sub_inputs).tobytes())
    h.update(hashlib.sha256(repr([i.shape for i in quantizer.calibration.images]).encode()).digest())
    return cache_dir / f"sensitivity-{h.hexdigest()[:24]}.json"


def sensitivity(bench: TrialBench, base: Trial, images: int, cache_dir: Path | None) -> list[tuple[str, float]]:
    """Nodes ranked by how much computing each one in float reduces the logit error of ``base`` on ``images`` of
    the search images; most responsible first."""
    quantizer = bench.quantizer_for(base.recipe)
    nodes = quantized_compute_nodes(base.path)
    idx = evenly_spaced(len(bench.inputs), images)
    sub_inputs, sub_ref = bench.inputs[idx], bench.fp32_logits[idx]
    cache = None if cache_dir is None else _cache_file(bench, base.recipe, sub_inputs, cache_dir)
    if cache is not None and cache.is_file():
        scored = [(str(n), float(e)) for n, e in json.loads(cache.read_text())]
        bench.log(f"  over budget: sensitivity of {len(scored)} nodes read from the cache {cache}")
        return scored
    bench.log(f"  over budget: measuring the sensitivity of {len(nodes)} quantized nodes on {len(idx)} images")
    scored = rank_nodes(base.path, quantizer.float_path(base.recipe), nodes, sub_inputs, sub_ref)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(scored))
    return scored


def keep_nodes_float(
    bench: TrialBench, base: Trial, max_drop: float, images: int, cache_dir: Path | None
) -> list[tuple[str, float]]:
    """When no eligible trial fits ``max_drop``: the sensitivity ranking of ``base`` (returned, for the report),
    and trials of ``base``'s recipe with the fewest float units that fit (doubling k, then bisection); [] when
    a trial fits already."""
    if any(fits(t, max_drop) for t in [t for t in bench.trials if eligible(t)] or bench.trials):
        return []
    ranking = sensitivity(bench, base, images, cache_dir)
    ranked = [name for name, _ in ranking]
    units = float_units(bench.quantizer_for(base.recipe).pre_path, ranked)
    limit = max(1, math.ceil(len(ranked) * MAX_FLOAT_FRACTION))
    results: dict[int, Trial] = {}

    def attempt(k: int) -> bool:
        if k not in results:
            names = tuple(dict.fromkeys(n for node in ranked[:k] for n in units.get(node, (node,))))
            recipe = dataclasses.replace(base.recipe, name=f"{base.recipe.name}-float{k}", nodes_to_exclude=names)
            # The ingredients (bias correction, equalisation, ranges) were chosen on the all-int8 model and are
            # kept: trying each k without them too doubled the search's time for no measured gain.
            results[k] = bench.try_recipe(recipe)
        return fits(results[k], max_drop)

    lo, k = 0, 1
    while k <= limit and not attempt(k):
        lo, k = k, k * 2
    if k > limit and not (limit > lo and attempt(limit)):
        return ranking
    hi = min(k, limit)
    while hi - lo > 1:  # invariant: lo fails (or is 0), hi fits
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if attempt(mid) else (mid, hi)
    return ranking
