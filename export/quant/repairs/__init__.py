"""What changes an int8 file to make it more accurate: bias correction, cross-layer equalisation, layer-wise
reconstruction and quantization-aware fine-tuning. Which ones are tried and kept: ``repair_step``."""
