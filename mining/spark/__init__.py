"""Spark DataFrame code of the production path: session, ingest, sessions, rephrase candidates, embedding cache."""
