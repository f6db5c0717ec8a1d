"""iofold-tui: a keyboard-driven terminal app for iofold auto-eval databases."""

__version__ = "0.1.0"
