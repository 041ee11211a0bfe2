"""Training, export and evaluation of the compressor health model.

Kept import-light on purpose: the agent locates the bundled model through this package
(``models/artifacts``) and must not pay for ``onnx`` or the simulator when it does.
"""
