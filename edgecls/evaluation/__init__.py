"""Evaluation: metrics (numpy), predictors for checkpoints (torch) and ONNX variants (runtime), reports."""
