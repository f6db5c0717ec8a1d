"""The demo / synthetic database generator (``iofold-tui --demo``, ``demo-db``): deterministic for a seed."""
