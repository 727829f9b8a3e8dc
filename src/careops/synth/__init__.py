"""careops.synth: a Synthea-style synthetic patient generator (no Java, no real data).

    >>> from careops.synth import generate
    >>> cohort = generate(patients=100, seed=7)
    >>> cohort.foreign_key_problems()
    []

Outputs: the cohort's DataFrames, CSV (``export.write_csv``), FHIR R4 transaction bundles
(``fhir.patient_bundles``, checked by ``fhir.validate_bundle``) and HL7 v2 ADT messages
(``hl7.adt_messages``; ``hl7.adt_feed`` mixes in defects with the answer each must get).
"""
from careops.synth.export import write_csv, write_fhir, write_hl7
from careops.synth.fhir import patient_bundles, validate_bundle
from careops.synth.hl7 import adt_feed, adt_messages
from careops.synth.model import DEFAULT_AS_OF, Anomalies, Cohort, age_on, generate

__all__ = ["DEFAULT_AS_OF", "Anomalies", "Cohort", "adt_feed", "adt_messages", "age_on", "generate",
           "patient_bundles", "validate_bundle", "write_csv", "write_fhir", "write_hl7"]
