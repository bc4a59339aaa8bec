"""Curation of detailed action descriptions (paper §3.1, App. D.1, Fig. 9)."""
