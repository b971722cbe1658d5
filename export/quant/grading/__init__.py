"""Measuring an int8 file against fp32: the images (calibration, search, held out), the images fp32 decides,
accuracy, the verdict on held-out images, and what onnxruntime really runs of a written graph."""
