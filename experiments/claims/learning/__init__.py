"""The learning claims, one module a claim (lNN_<slug>.py), and what they share (common.py)."""
