"""Evaluate one Rego module in a child process (``careops.dockerfile.policy.evaluate_learner_rule``).

Reads ``{"policy", "package", "inputs", "cpu"}`` as JSON on stdin and prints one JSON line:
``{"findings": [[...] per input]}`` or ``{"error", "fix"}``. CPU time is limited before the policy is compiled
(an address-space limit is not: rego-cpp's allocator reserves large ranges up front); the parent also stops the
child after a timeout.
"""
from __future__ import annotations

import json
import sys


def main() -> int:
    request = json.loads(sys.stdin.read())
    try:
        import resource

        cpu = int(request.get("cpu") or 10)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    except (ImportError, ValueError, OSError):  # not on this platform: the parent's timeout still applies
        pass
    from careops.dockerfile.policy import findings_of
    from careops.errors import CareOpsError

    try:
        answer = {"findings": [findings_of(request["policy"], data, request["package"]) for data in request["inputs"]]}
    except CareOpsError as exc:
        answer = {"error": exc.message, "fix": exc.fix or ""}
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
