"""Plain state objects behind the panes: no textual here (tested without an app)."""
