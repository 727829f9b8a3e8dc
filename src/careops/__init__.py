"""CareOps Labs toolkit: sandboxed Docker labs, learner checks and grading.

The notebooks, the `careops` CLI and the grader all import from here, so that
a learner's visible check and the grader's check are the same code.
"""
from careops.errors import CareOpsError

__version__ = "0.1.0"
__all__ = ["CareOpsError", "__version__"]
