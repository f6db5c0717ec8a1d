"""The Textual UI: the app, one module per pane under panes/, shared widgets. Sits on iofold_tui.data."""
