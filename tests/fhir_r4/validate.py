"""Validate FHIR resources against the R4 (4.0.1) models of fhir.resources 6.4.

Reads one JSON resource per line on stdin (a Bundle, or any resource); writes one
JSON line per input: {"resourceType": ..., "errors": [...]} (empty when valid).
Runs in the virtualenv of tests/fhir_r4/requirements.txt, not the service's.
"""

import json
import sys

import fhir.resources
from fhir.resources import construct_fhir_element


def main() -> int:
    assert fhir.resources.__fhir_version__ == "4.0.1", fhir.resources.__fhir_version__
    for line in sys.stdin:
        if not line.strip():
            continue
        data = json.loads(line)
        kind = data.get("resourceType", "")
        try:
            construct_fhir_element(kind, data)
            errors = []
        except Exception as error:  # the models raise pydantic's ValidationError
            errors = [str(error)]
        sys.stdout.write(json.dumps({"resourceType": kind, "errors": errors}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
