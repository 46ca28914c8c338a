"""Self-learning utterance mining: rephrase pairs, cross-user variants, weak labels."""
__version__ = "0.1.0"
