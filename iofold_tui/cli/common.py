"""What every command shares: one-line errors and exit code 2 instead of tracebacks (``guarded``),
opening a source (``open_any``), the SOURCE / --demo argument and --api-base."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import click

from iofold_tui.data.errors import ReadOnlyError, SourceError

EXIT_BAD_INPUT = 2


class DefaultOpenGroup(click.Group):
    """``iofold-tui db.sqlite`` and ``iofold-tui --demo`` mean ``iofold-tui open …``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        asks_for_help = bool(args) and args[0] in ("--help", "-h", "--version")
        if not asks_for_help and (not args or args[0] not in self.commands):
            args = ["open", *args]
        return super().parse_args(ctx, args)


def fail(message: str) -> NoReturn:
    click.echo(f"iofold-tui: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


_SOURCE_NAME: list[str] = []  # the file the user named for the database being read (innermost last)


@contextlib.contextmanager
def guard_database(opened: Any) -> Iterator[None]:
    """While reading ``opened``, a SQLite error names its file (the user's, not a cache working copy)."""
    _SOURCE_NAME.append(user_name(opened))
    try:
        yield
    finally:
        _SOURCE_NAME.pop()


def user_name(opened: Any) -> str:
    return "demo database" if opened.kind == "demo" else str(opened.origin)


def fail_reading(message: str) -> NoReturn:
    """``fail`` for a problem met while reading the open database: the line names the user's file."""
    fail(f"{_SOURCE_NAME[-1]}: {message}" if _SOURCE_NAME else message)


def _database_error(exc: Exception) -> str:
    where = _SOURCE_NAME[-1] if _SOURCE_NAME else "database"
    text = str(exc) or type(exc).__name__
    if "malformed" in text or "not a database" in text:
        return f"{where}: corrupt SQLite database ({text}); copy what you can with `sqlite3 FILE .recover`"
    return f"{where}: database error: {text}"


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected failures into one line + exit 2."""
    import functools
    import sqlite3

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
            sys.stdout.flush()  # a reader that left (`| head`) shows up here, not at interpreter exit
            return result
        except BrokenPipeError:  # `iofold-tui sql db "…" | head -1`: the reader left, nothing to report
            _quiet_exit()
        except SourceError as exc:
            fail(str(exc))
        except ReadOnlyError as exc:
            fail_reading(f"cannot write: {exc}")
        except ValueError as exc:
            fail(str(exc))
        except sqlite3.DatabaseError as exc:
            fail(_database_error(exc))
        except OSError as exc:
            fail(f"{getattr(exc, 'filename', '') or 'error'}: {exc.strerror or exc}")
        except KeyboardInterrupt:
            fail("interrupted")
        except Exception as exc:
            if os.environ.get("IOFOLD_TUI_DEBUG"):
                raise
            fail(f"unexpected error: {type(exc).__name__}: {exc} (set IOFOLD_TUI_DEBUG=1 for details)")

    return wrapper


def _quiet_exit() -> None:
    """Leave without flushing into the closed pipe (Python would print "Exception ignored …")."""
    with contextlib.suppress(OSError):
        sys.stderr.flush()
    os._exit(0)


def progress_printer(label: str) -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
        return None
    state = {"last": -1}

    def show(done: int, total: int) -> None:
        pct = int(100 * done / total) if total else 0
        if pct != state["last"]:
            state["last"] = pct
            click.echo(
                f"\r{label} {pct:3d}% ({done / 1e6:,.0f} of {total / 1e6:,.0f} MB)", err=True, nl=pct >= 100
            )

    return show


def source_argument(fn: Callable[..., Any]) -> Callable[..., Any]:
    """SOURCE (optional when --demo is given) for every command that opens a database."""
    fn = click.option("--demo", is_flag=True, help="Use the built-in demo database instead of SOURCE.")(fn)
    return click.argument("source", required=False)(fn)


# ``-o/--output`` of the commands that write a D1 patch (export-labels, export-evals): a file or stdout.
patch_output_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    show_default=True,
    help="Where to write the patch ('-' for stdout).",
)


def _set_api_base(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value:
        os.environ["IOFOLD_D1_API_BASE"] = value  # read by data/source/d1/client.py
    return value


def api_base_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--api-base URL``: the D1 REST API base for d1:// sources (tests, self-hosted proxies)."""
    return click.option(
        "--api-base",
        metavar="URL",
        expose_value=False,
        callback=_set_api_base,
        is_eager=True,
        help="D1 REST API base for d1:// sources (default https://api.cloudflare.com/client/v4; "
        "also IOFOLD_D1_API_BASE).",
    )(fn)


def open_any(source: str | None, *, demo: bool = False, read_only: bool = False):
    from iofold_tui.data.source.loader import open_source

    if not source and not demo:
        fail("no source given: a .sqlite file, a wrangler d1 export .sql, a wrangler project dir, or --demo")

    opened = open_source(
        source, demo=demo, read_only=read_only, progress=progress_printer("loading D1 export")
    )
    _SOURCE_NAME.append(user_name(opened))  # SQLite errors from here on name this file
    return opened


def refuse_live(opened: Any, command: str) -> None:
    """Commands about copies of a D1 database: on the live database itself there is nothing to send back."""
    if opened.kind == "d1-remote":
        fail(f"{opened.target}: {command} works on copies of a D1 database, not on the live one "
             "(`iofold-tui pull` a copy, work there, then `push`)")
