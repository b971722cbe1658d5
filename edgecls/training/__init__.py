"""Training and evaluation (PyTorch). Imported only by the train/eval/export commands."""
