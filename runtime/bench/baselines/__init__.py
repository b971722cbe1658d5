"""What the bench compares onnxruntime with, in the same table: OpenCV DNN (``opencv_dnn``) on each fp32 file and
PyTorch eager (``torch_eager`` finds the source checkpoint; edgecls.training.eager_runner runs it). Loaders run in
the measuring process only; importing these modules imports neither cv2's DNN nor torch."""
