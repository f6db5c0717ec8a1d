"""Structure rules of ``iofold_tui/ui`` that hold for every module (read from the source, not run):

* no SQL runs in ui/: queries live in data/ (the SQL console runs the user's own text through
  data/sqlconsole; preset queries and jump targets handed to it are user-visible text, not executed here);
* every ``Binding`` has an ``id`` (so a user keymap can remap it);
* every ``Message`` subclass is a ``@dataclass`` (its fields are its signature: no hand-written
  ``__init__`` to keep in step with the attributes);
* the pane models under ui/models import no textual or rich.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import iofold_tui.ui

UI = Path(iofold_tui.ui.__file__).parent
SQL = re.compile(
    r"^\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|WITH|PRAGMA|CREATE|DROP|ALTER|ATTACH|BEGIN)\b", re.I
)
RUNS_SQL = {"execute", "executemany", "executescript", "query", "query_one", "query_all"}


def modules() -> list[Path]:
    return sorted(p for p in UI.rglob("*.py") if "__pycache__" not in p.parts)


def _text(node: ast.AST) -> str | None:
    """The literal text of a string or f-string argument (f-string holes as ``?``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "?" for v in node.values)  # type: ignore[misc]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        return None if left is None or right is None else left + right
    return None


def sql_calls(tree: ast.AST) -> list[int]:
    """Lines where a SQL statement written in the source is handed to a query method."""
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in RUNS_SQL
                and node.args):
            text = _text(node.args[0])
            if text is not None and SQL.match(text):
                found.append(node.lineno)
    return found


def test_the_sql_rule_finds_sql_and_spares_presets() -> None:
    tree = ast.parse('conn.execute("SELECT 1 FROM t")\nself.db.query_one(f"  select {x} from t")\n'
                     'PRESET = "SELECT name FROM sqlite_master"\nself.query_one("#grid")\n'
                     'c.execute("INSERT INTO t " "VALUES (?)", (1,))\n')
    assert sql_calls(tree) == [1, 2, 5]


def test_no_sql_runs_in_ui() -> None:
    offenders = {}
    for path in modules():
        rel = path.relative_to(UI).as_posix()
        lines = sql_calls(ast.parse(path.read_text(), str(path)))
        if lines:
            offenders[rel] = lines
    assert offenders == {}, "SQL in ui/ (move it into a function in data/): " + repr(offenders)


def test_no_sql_runs_in_the_cli() -> None:
    """The CLI's commands sit on data/ too (a check of an id, a workspace: a data/ function)."""
    cli = UI.parent / "cli"
    offenders = {p.name: lines for p in sorted(cli.glob("*.py"))
                 if (lines := sql_calls(ast.parse(p.read_text(), str(p))))}
    assert offenders == {}, "SQL in cli/ (move it into a function in data/): " + repr(offenders)


def test_every_binding_has_an_id() -> None:
    missing = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call)
                    and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Binding"
                    and not any(k.arg in ("id", None) for k in node.keywords)
                    and node.args):  # Binding(*b) rebuilds an existing binding (key_help)
                if isinstance(node.args[0], ast.Starred):
                    continue
                missing.append(f"{path.relative_to(UI)}:{node.lineno}")
    assert missing == []


def test_models_import_no_widgets() -> None:
    for path in (UI / "models").glob("*.py"):
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.split(".")[0] in ("textual", "rich")], path


def undecorated_messages(tree: ast.AST) -> list[str]:
    """Classes deriving directly from ``Message`` without ``@dataclass`` (``dataclasses.dataclass`` and
    ``dataclass(...)`` count)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        if not any(getattr(b, "id", getattr(b, "attr", None)) == "Message" for b in node.bases):
            continue
        decorators = [d.func if isinstance(d, ast.Call) else d for d in node.decorator_list]
        if not any(getattr(d, "id", getattr(d, "attr", None)) == "dataclass" for d in decorators):
            found.append(f"{node.name}:{node.lineno}")
    return found


def test_the_message_rule_finds_a_hand_written_message() -> None:
    tree = ast.parse("@dataclass\nclass A(Message):\n    x: int\n"
                     "@dataclasses.dataclass(eq=False)\nclass B(message.Message):\n    pass\n"
                     "class C(Message):\n    def __init__(self, x): super().__init__(); self.x = x\n"
                     "class W(Widget):\n    @cache\n    class D(textual.message.Message):\n        pass\n"
                     "class E(Widget):\n    pass\n")
    assert undecorated_messages(tree) == ["C:7", "D:11"]


def test_every_message_is_a_dataclass() -> None:
    offenders = {rel: found for path in modules()
                 if (found := undecorated_messages(ast.parse(path.read_text(), str(path))))
                 and (rel := path.relative_to(UI).as_posix())}
    assert offenders == {}, "Message subclasses without @dataclass: " + repr(offenders)
