"""Scoring: champion ONNX models write predictions back to Postgres."""
