"""Training: model specs, time-based selection, calibration, ONNX export and the model registry."""
