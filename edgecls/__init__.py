"""edgecls: train CNN image classifiers, export to ONNX with their contract, quantize to int8, run on devices.

Importing this package is cheap and has no side effects: heavy modules (torch, onnx) load only inside
the commands and functions that need them.
"""

__version__ = "0.1.0"
