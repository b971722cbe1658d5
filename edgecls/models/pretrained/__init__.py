"""Pretrained ImageNet weights for edgecls's architectures: where each file comes from (weight sources) and
how its tensors map into edgecls's modules (explicit key/shape tables)."""
