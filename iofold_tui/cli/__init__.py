"""Command line: ``iofold-tui SOURCE`` opens the TUI; subcommands are headless and sit on the same core.

One module per command group (sources, labels, evals, workbench, inspect, search, team, d1), each built
on ``common`` (one-line errors, exit code 2, opening a source); this module only assembles them.
"""

from __future__ import annotations

import click

from iofold_tui import __version__
from iofold_tui.cli import d1, evals, inspect, labels, search, sources, team, workbench
from iofold_tui.cli.common import DefaultOpenGroup


@click.group(cls=DefaultOpenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="iofold-tui")
def main() -> None:
    """Browse, label and evaluate an iofold database: a SQLite file, a `wrangler d1 export` .sql file,
    a wrangler project directory, or a live D1 database (d1://NAME, token in CLOUDFLARE_API_TOKEN).
    `iofold-tui --demo` opens a built-in demo."""


# Every command, by module (``iofold-tui --help`` lists them alphabetically).
COMMANDS: tuple[click.Command, ...] = (
    sources.open_cmd, sources.info, sources.demo_db, sources.screenshot,
    inspect.overview_cmd, inspect.sql_cmd, inspect.stats,
    labels.export_labels, labels.carry_labels_cmd,
    evals.run_eval_cmd, evals.undo_run_cmd,
    workbench.eval_version_cmd, workbench.undo_version_cmd, workbench.compare_cmd, workbench.export_evals_cmd,
    search.index_cmd, search.search_cmd,
    team.agreement_cmd, team.import_labels_cmd, team.annotator_cmd,
    d1.pull_cmd, d1.push_cmd,
)
for _command in COMMANDS:
    main.add_command(_command)

if __name__ == "__main__":
    main()
