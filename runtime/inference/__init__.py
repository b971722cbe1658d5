"""Running a classifier: images -> the model's inputs -> its outputs -> predictions, and the one timing loop.

preprocess (the contract's resize and normalisation), batched_inference (many inputs through a session),
scores (softmax, top-1, agreement), classifier (Classifier: the public API), latency (warm-up, timed
calls, statistics), annotate (a prediction drawn on a frame).
"""
