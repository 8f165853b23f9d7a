"""``ipa-ext profile``: measure each (stage, variant, cpu, batch) of a pipeline's real models in pinned
workers and write the profile table the optimizer reads (see docs/profiling.md).

Importing this package imports neither onnx nor onnxruntime; the workers do.
"""
