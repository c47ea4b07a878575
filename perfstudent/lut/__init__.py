"""The latency table (LUT): fingerprints, rows, overheads, interpolation, prediction."""

from perfstudent.lut.fingerprint import Fingerprint
from perfstudent.lut.store import LatencyTable, default_lut_path
from perfstudent.lut.view import LatencyView, Prediction, context_key, spec_context

__all__ = ["Fingerprint", "LatencyTable", "LatencyView", "Prediction", "context_key",
           "default_lut_path", "spec_context"]
