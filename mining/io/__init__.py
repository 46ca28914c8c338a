"""Storage and contracts: atomic stage writes, schema files, the training-set export."""
