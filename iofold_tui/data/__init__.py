"""The headless core of iofold-tui: sources, schema detection, queries, label writes, statistics,
D1 import/patch and the eval sandbox. Nothing here imports textual (a test checks it)."""
