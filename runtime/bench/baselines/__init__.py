"""What the bench compares onnxruntime with, in the same table: OpenCV DNN (``opencv_dnn``) on each fp32 file and
PyTorch eager (``torch_eager``) on the source checkpoint. Loaders run in the measuring process only; importing
these modules imports neither cv2's DNN nor torch."""
