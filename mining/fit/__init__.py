"""Fitting the packaged rephrase scorer and calibration on development data (never imported by the production path)."""
