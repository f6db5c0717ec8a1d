"""The live D1 source (``iofold-tui d1://DATABASE``): the REST client, the connection shim every pane
runs on, its cache, opening and offline use, pull and push."""
