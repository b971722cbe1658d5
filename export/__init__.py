"""Export: PyTorch -> ONNX with the contract, parity checks, fp16 and int8 variants."""
