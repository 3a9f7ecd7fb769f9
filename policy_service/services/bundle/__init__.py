"""Policy bundles (docs/contract.md): parse, validate, import (all-or-nothing upsert), export.

A bundle holds payers, drugs, policy versions, patients and authorizations, each identified by
its natural key. Import validates every record first and reports every error with its path;
only then does it write, flushing inside the caller's transaction so the caller commits once or
nothing at all is written.
"""

from policy_service.services.bundle.export import (
    authorization_record,
    drug_record,
    dump_bundle_text,
    export_bundle,
    patient_record,
    payer_record,
    policy_record,
)
from policy_service.services.bundle.importing import (
    Summary,
    has_changes,
    import_bundle,
    import_files,
)
from policy_service.services.bundle.parse import (
    bundle_files,
    merge_bundle_files,
    parse_bundle_text,
    read_bundle_file,
    seed_directory,
)
from policy_service.services.bundle.validate import NATURAL_KEYS, validate_bundle

__all__ = [
    "NATURAL_KEYS",
    "Summary",
    "authorization_record",
    "bundle_files",
    "drug_record",
    "dump_bundle_text",
    "export_bundle",
    "has_changes",
    "import_bundle",
    "import_files",
    "merge_bundle_files",
    "parse_bundle_text",
    "patient_record",
    "payer_record",
    "policy_record",
    "read_bundle_file",
    "seed_directory",
    "validate_bundle",
]
