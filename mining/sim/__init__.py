"""Simulator: real corpora, a weak production NLU, simulated users and sessions, corrupted logs (never imported by the production path)."""
