"""Operator tools: merge dataset versions, inspect a dataset."""
