"""Keras 3 agents: the training loop, the algorithms behind it, their networks and losses (no env imports here)."""
