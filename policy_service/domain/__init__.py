"""Domain types and code checks: below the schemas, above the models, free of Flask and SQL.

Schemas load requests into the types of ``domain.requests`` and check codes with
``domain.codes`` and ``domain.icd10``; services read the same types. Nothing here imports a
schema or a service, so imports run downhill.
"""
