"""A recipe made into an int8 QDQ file: onnxruntime's static quantizer, prepared once and repeated per recipe, with
activation ranges from one statistics pass over the calibration images."""
