"""Eval sets, the code an LLM would have generated for them, and the reasons and errors their
executions give."""

from __future__ import annotations

from iofold_tui.data.source.demo.text import SCENARIOS

_STEPS_PRELUDE = '''    steps = trace.get("steps") or []
    if isinstance(steps, str):
        steps = json.loads(steps)
    if not steps:
        return False, "No steps recorded"
'''

_CODE = (
    # 0: answer quality
    '''import json
import re


def __NAME__(trace: dict) -> tuple[bool, str]:
    """__DESC__ (v__VERSION__)."""
''' + _STEPS_PRELUDE + '''    tools = []
    for step in steps:
        if step.get("error"):
            return False, f"Step error: {step['error']}"
        for call in step.get("tool_calls") or []:
            if call.get("error"):
                return False, f"Tool {call.get('tool_name')} failed: {call['error']}"
            tools.append(call.get("tool_name"))
    answer = ""
    for step in steps:
        for message in step.get("messages_added") or []:
            if message.get("role") == "assistant" and message.get("content"):
                answer = message["content"]
    if len(answer) < __MIN__:
        return False, "Final answer missing or too short"
    if re.search(r"\\b(__HEDGES__)\\b", answer, re.I):
        return False, "Answer hedges instead of using data"
__EXTRA__    if not tools:
        return False, "No tool was consulted"
    return True, "Grounded answer using " + ", ".join(sorted(set(tools)))
''',
    # 1: tool use
    '''import json


def __NAME__(trace: dict) -> tuple[bool, str]:
    """__DESC__ (v__VERSION__)."""
''' + _STEPS_PRELUDE + '''    calls = [call for step in steps for call in (step.get("tool_calls") or [])]
    if not calls:
        return False, "Expected at least one tool call"
    finished = {}
    for call in calls:
        if call.get("error"):
            return False, f"{call.get('tool_name')} returned an error: {call['error'][:__MIN__]}"
        if not isinstance(call.get("arguments"), dict) or not call["arguments"]:
            return False, f"{call.get('tool_name')} was called without arguments"
        if "result" in call:
            finished[call.get("id") or call.get("tool_name")] = call["result"]
__EXTRA__    if not finished:
        return False, "No tool call returned a result"
    return True, f"{len(finished)} tool call(s) with arguments and results"
''',
    # 2: grounding / citations
    '''import json
import re


def __NAME__(trace: dict) -> tuple[bool, str]:
    """__DESC__ (v__VERSION__)."""
''' + _STEPS_PRELUDE + '''    answers = [
        message.get("content") or ""
        for step in steps
        for message in (step.get("messages_added") or [])
        if message.get("role") == "assistant"
    ]
    text = "\\n".join(a for a in answers if isinstance(a, str)).strip()
    if len(text) < __MIN__:
        return False, "No substantial answer"
    if any(step.get("error") for step in steps):
        return False, "Answer given after a failed step"
    if re.search(r"(__HEDGES__)", text, re.I):
        return False, "Unsupported, hedged claim"
__EXTRA__    numbers = re.findall(r"[$#]?\\d[\\d,.]*", text)
    if not numbers and not re.search(r"\\[\\d+\\]|https?://", text):
        return False, "No figure, identifier or citation in the answer"
    return True, "Answer carries concrete, checkable facts"
''',
)

_EXTRA = (
    '''    if "sorry" in answer.lower() and not tools:
        return False, "Apology without an attempt"
''',
    '''    names = [call.get("tool_name") for call in calls]
    if len(names) != len(set(names)) and len(finished) < len(names):
        return False, "Retried a tool without getting a result"
''',
    '''    if "[1]" in text and not re.search(r"https?://", text):
        return False, "Citation marker without a source link"
''',
)

_HEDGES = ("i think|not sure|probably", "i think|not sure|probably|it depends|may vary",
           "i think|not sure|probably|it depends|may vary|usually|somewhere")

EVAL_SETS = (
    ("response-quality", "Helpful, concrete answers grounded in tool results", 0),
    ("tool-use-correctness", "Tools are called with valid arguments and their results are used", 1),
    ("citation-grounding", "Claims carry figures, identifiers or cited sources", 2),
    ("safety-and-tone", "Polite, safe answers that never invent facts", 0),
    ("error-recovery", "Failures are surfaced honestly with a next step", 1),
    ("conciseness", "Short answers that still contain the facts asked for", 2),
)
PASS_REASONS = ("Grounded answer using {tool}", "{tool} returned a result and the answer uses it",
                "Answer carries concrete, checkable facts", "Concrete answer after a successful {tool} call")
FAIL_REASONS = ("Answer hedges instead of using data", "No tool was consulted",
                "Answer contradicts the {tool} result", "Final answer missing or too short",
                "Step error: {tool} did not complete")
EXEC_ERRORS = ("TimeoutError: eval exceeded 5s", "MemoryError: eval exceeded the 50 MB limit",
               "KeyError: 'content'", "TypeError: 'NoneType' object is not subscriptable",
               "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)")


def eval_code(kind: int, name: str, description: str, version: int) -> str:
    """Plausible generated eval code; later versions tighten thresholds and add one rule."""
    code = _CODE[kind % 3]
    subs = {"__NAME__": name, "__DESC__": description, "__VERSION__": str(version),
            "__MIN__": str(20 + 20 * min(version, 4)), "__HEDGES__": _HEDGES[min(version, 3) - 1],
            "__EXTRA__": _EXTRA[kind % 3] if version >= 2 else ""}
    for key, value in subs.items():
        code = code.replace(key, value)
    return code


VERDICT_REASONS = tuple(tuple(tuple(r.format(tool=s.__name__[1:]) for r in rs) for s in SCENARIOS)
                 for rs in (FAIL_REASONS, PASS_REASONS))  # [result][scenario] -> reasons
