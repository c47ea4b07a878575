"""Profiling: devices, backends (torch, ONNX Runtime, TVM), the timing protocol, sweeps, runners."""
