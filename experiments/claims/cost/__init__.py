"""The cost claims, one module a claim (sNN_<slug>.py), and what they share (common.py)."""
