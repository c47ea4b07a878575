"""perfstudent: latency-budgeted, performance-enhanced students for a device.

Profile conv shapes on a device into a latency lookup table, plan per-layer
widths under a latency budget with Fisher saliency, and distill the chosen
student with attention transfer (Turner et al., arXiv 1810.10460).
"""

__version__ = "0.1.0"
