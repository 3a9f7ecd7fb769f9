"""Billing arithmetic shared by the eligibility check and the claim check: pure functions."""

from policy_service.billing.administration import (
    AdministrationIssue,
    AdministrationLines,
    Infusion,
    additional_hours,
    administration_lines,
)
from policy_service.billing.timely_filing import filing_deadline
from policy_service.billing.units import (
    BillingLine,
    DrugBilling,
    Package,
    PackageCount,
    administered_units,
    drug_billing,
    drug_lines,
    least_waste_packages,
)

__all__ = [
    "AdministrationIssue",
    "AdministrationLines",
    "BillingLine",
    "DrugBilling",
    "Infusion",
    "Package",
    "PackageCount",
    "additional_hours",
    "administered_units",
    "administration_lines",
    "drug_billing",
    "drug_lines",
    "filing_deadline",
    "least_waste_packages",
]
