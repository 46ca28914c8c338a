"""Operator tools: inspect a published version, diff two, merge mined labels into a training set, show the configuration."""
