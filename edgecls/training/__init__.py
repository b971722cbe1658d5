"""Training (PyTorch): the loop, resume, checkpoints, transfer learning, DDP, and the torch-side helpers the other
stages borrow: torch_inference (checkpoint images -> logits for eval, export's parity and golden files),
checkpoint (export, eval, bench's PyTorch-eager baseline via eager_runner), qat (export's quantization-aware
fine-tuning). Metrics and ``edgecls eval`` live in edgecls.evaluation. Never imported by the
runtime (the bench's measuring child imports eager_runner by name, only for the PyTorch baseline).
"""
