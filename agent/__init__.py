"""Keras 3 agents: PPO and PPO+RND networks and learners (no env imports here)."""
