"""Apache TVM helpers shared by the ``tvm`` backend and the remote (RPC tracker) runner.

``build``: ConvShape -> Relax module -> fused, compiled executable (and shared
objects for boards); ``timing``: ``time_evaluator`` -> Measurement;
``tuning``: MetaSchedule databases kept next to the LUT; ``student``: whole
students through ``relax.frontend.onnx``.
"""
