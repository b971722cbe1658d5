"""The search on the search images: trials measured and ranked, the nodes kept in float, the choice among the
trials, and the speed step with the timings (interleaved, per node) it rests on."""
