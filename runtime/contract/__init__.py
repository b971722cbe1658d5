"""The model contract: what a model must be fed and what its outputs mean, as files carry it.

model_contract (ModelContract, read from ONNX metadata), schema (its JSON schema, checked by msgspec),
options (command-line flags -> a contract), class_labels (a data set's class names -> the model's outputs).
"""
