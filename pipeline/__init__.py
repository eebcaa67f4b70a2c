"""callreview pipeline: audio -> transcript -> alignment -> review -> report."""

__version__ = "0.1.0"
