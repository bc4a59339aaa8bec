"""Evaluation (paper §4.1, App. A–C): per-pair metrics, bootstrap intervals, tables, the HTML report."""
