"""The threshold engine: turns recorded bounces into flags (see rules.py for the rules)."""
