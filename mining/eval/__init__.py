"""Evaluation against simulator gold (never imported by the production path)."""
