"""Storage and contracts: atomic stage writes, schema files, the export (training set, rewrite table, changelog)."""
