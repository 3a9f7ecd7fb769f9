"""CDS Hooks with the Da Vinci CRD guide: coverage requirements answered inside the EHR.

``security`` checks the EHR's JWT, ``fhir`` finds and reads the FHIR resources a hook call
carries, ``mapping`` turns them into eligibility requests and ``hooks`` answers the call with
cards and coverage-information updates. None of them holds a coverage rule: the answer comes
from the eligibility service, the same one the API calls.
"""
