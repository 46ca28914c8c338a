"""Privacy of the production path: pseudonymization and PII scrubbing, differential privacy."""
