"""The latency table (LUT): fingerprints, rows, overheads, interpolation, prediction."""

from perfstudent.lut.fingerprint import Fingerprint
from perfstudent.lut.store import LatencyTable, default_lut_path
from perfstudent.lut.view import LatencyView, Prediction, spec_context, weight_mb

__all__ = ["Fingerprint", "LatencyTable", "LatencyView", "Prediction", "default_lut_path",
           "spec_context", "weight_mb"]
