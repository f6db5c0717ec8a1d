"""The demo database and a deterministic synthetic iofold v1.0 database of any size.

``generate()`` builds rows chunk by chunk; every chunk is a pure function of (arguments, chunk
number) with its own seeded RNG, so the same arguments always give the same rows, whether chunks
are made inline or by worker processes (big databases). Per-trace facts live for one chunk only, so
memory does not grow with the number of traces. Indexes and the view are created after the bulk
insert (far faster than maintaining 26 indexes row by row); the finished file holds exactly
schema.sql's objects.
"""

from __future__ import annotations

import calendar
import json
import multiprocessing
import os
import random
import re
import sqlite3
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

from iofold_tui.data.errors import SourceError
from iofold_tui.data.paths import schema_dir

CHUNK = 5_000  # traces per chunk; fixed, because the chunk number seeds its RNG
START = calendar.timegm((2025, 5, 1, 0, 0, 0))
SPAN = 210 * 86_400  # traces spread over ~7 months
NONE, POS, NEG, NEU = 0, 1, 2, 3
RATING = {POS: "positive", NEG: "negative", NEU: "neutral"}
PAD = "@@PAD@@"  # placeholder for the system prompt text that brings steps up to their target size


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def _sql_ts(sec: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(sec))


def _preview(text: str) -> str:
    """iofold's ≈200-character preview: a plain cut, control characters and newlines included."""
    return text if len(text) <= 200 else text[:197] + "..."


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


# ----------------------------------------------------------------------------------------------
# Demo database
# ----------------------------------------------------------------------------------------------


def build_demo_db(path: Path) -> Path:
    """schema.sql + seed.sql into a fresh file at ``path`` (replacing any previous demo file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        conn.executescript(schema_dir().joinpath("schema.sql").read_text(encoding="utf-8"))
        conn.executescript(schema_dir().joinpath("seed.sql").read_text(encoding="utf-8"))
        conn.commit()
    finally:
        conn.close()
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------------------------
# Conversation content: scenarios produce (question, tool, args, result, answer, wrong answer)
# ----------------------------------------------------------------------------------------------

CARRIERS = ("DPD", "UPS", "FedEx", "DHL", "Royal Mail", "USPS")
REGIONS = ("North America", "EMEA", "APAC", "LATAM")
PLANS = ("Starter", "Team", "Business", "Enterprise")
FEATURES = ("checkout", "search", "billing", "login", "reports", "webhooks")
SDKS = ("Python", "TypeScript", "Go", "Java")
TASKS = (
    "retry failed requests",
    "paginate list results",
    "verify webhook signatures",
    "set a request timeout",
    "upload large files",
    "rotate API keys",
)
NAMES = ("Maya Chen", "Tom Okafor", "Priya Raman", "Lukas Berg", "Ana Souza", "Kenji Mori", "Sara Haddad")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
HEDGES = (
    "It depends on a few factors, so it's hard to say exactly.",
    "I think it's probably fine, but I'm not sure.",
    "That may vary; you should check the website or contact support.",
    "I don't have that information right now, but it's usually quick.",
)
TOOL_ERRORS = (
    "TimeoutError: upstream did not answer within 30s",
    "HTTP 503 Service Unavailable",
    "RateLimitError: 429 Too Many Requests (retry after 20s)",
    "ConnectionResetError: [Errno 104] peer reset",
    "SMTPServerDisconnected: timed out waiting for smtp.northwind.io:587",
    "PermissionError: token lacks scope 'orders:read'",
)
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "claude-3-5-haiku")

Turn = tuple[str, str, dict[str, Any], dict[str, Any], str, str]


def _order(r: random.Random) -> Turn:
    order, carrier = r.randrange(10_000, 99_999), r.choice(CARRIERS)
    tracking, day = f"{r.getrandbits(40):013d}", r.choice(WEEKDAYS)
    result = {"order_id": str(order), "status": "in_transit", "carrier": carrier, "tracking_number": tracking,
              "eta": f"2025-{r.randrange(6, 12):02d}-{r.randrange(1, 28):02d}", "items": r.randrange(1, 5)}
    return (
        f"Where is my order #{order}? It was supposed to arrive on {day} and tracking hasn't changed.",
        "get_order_status",
        {"order_id": str(order)},
        result,
        f"Order #{order} is in transit with {carrier} (tracking {tracking}) and should arrive by "
        f"{result['eta']}. "
        "If it hasn't arrived by then, reply here and I'll reship it at no cost.",
        f"Order #{order} was delivered yesterday, so it should already be with you.",
    )


def _revenue(r: random.Random) -> Turn:
    region, quarter = r.choice(REGIONS), f"Q{r.randrange(1, 5)} 2025"
    amount, change = r.randrange(200_000, 3_000_000), r.uniform(-12, 25)
    sql = f"SELECT SUM(amount_usd) FROM invoices WHERE region = '{region}' AND quarter = '{quarter}'"
    return (f"What was {region} revenue in {quarter}, and how does it compare with the previous quarter?",
            "sql_query", {"query": sql, "database": "billing"},
            {"rows": [{"revenue": amount, "change_pct": round(change, 2)}], "row_count": 1},
            f"{region} revenue in {quarter} was ${amount:,}, {change:+.1f}% versus the previous quarter.",
            f"{region} revenue in {quarter} was roughly ${amount * 2:,}, about the same as before.")


def _pricing(r: random.Random) -> Turn:
    plan, seats = r.choice(PLANS), r.randrange(5, 500)
    price = seats * r.choice((96, 180, 348, 540))
    return (
        f"How much is the {plan} plan for {seats} seats if we pay annually? Any non-profit discount?",
        "get_price_quote",
        {"plan": plan.lower(), "seats": seats, "billing": "annual"},
        {"total_usd": price, "currency": "USD", "nonprofit_discount_pct": 20},
        f"The {plan} plan for {seats} seats is ${price:,} per year billed annually; registered non-profits "
        f"get 20% off.",
        f"The {plan} plan is $10 per seat per month, so about ${seats * 120:,} a year.",
    )


def _email(r: random.Random) -> Turn:
    name = r.choice(NAMES)
    email = name.lower().replace(" ", ".") + "@northwind.io"
    msg = f"<{r.getrandbits(48):x}@mail.northwind.io>"
    return (
        f"Email the weekly incident summary to {email} and cc the on-call channel.",
        "send_email",
        {"to": [email], "cc": ["oncall@northwind.io"], "subject": "Weekly incident summary"},
        {"message_id": msg, "accepted": True},
        f"Done: the weekly incident summary went to {name} ({email}) with on-call in cc, message id {msg}.",
        f"I've drafted the summary for {name}; let me know if you'd like me to send it.",
    )


def _docs(r: random.Random) -> Turn:
    sdk, task = r.choice(SDKS), r.choice(TASKS)
    slug = task.replace(" ", "-")
    url = f"https://docs.northwind.io/sdk/{sdk.lower()}/{slug}"
    hits = [
        {
            "title": f"{sdk} SDK: {task}",
            "url": url,
            "snippet": f"Use the client option for {task}; see examples.",
        }
    ]
    return (
        f"How do I {task} with the {sdk} SDK?",
        "search_docs",
        {"query": f"{sdk} sdk {task}", "top_k": 3},
        {"results": hits},
        f"In the {sdk} SDK you can {task} through the client options shown in the reference [1]."
        f"\n\n[1] {url}",
        f"You can {task} in the {sdk} SDK; it's covered somewhere in the docs.",
    )


def _refund(r: random.Random) -> Turn:
    invoice, amount = f"INV-{r.randrange(100_000, 999_999)}", r.randrange(20, 2_000)
    refund = f"re_{r.getrandbits(40):x}"
    return (
        f"I was charged twice for invoice {invoice}. Can I get the duplicate ${amount} refunded?",
        "issue_refund",
        {"invoice_id": invoice, "amount_usd": amount, "reason": "duplicate"},
        {"refund_id": refund, "status": "pending", "eta_days": 5},
        f"I've refunded the duplicate ${amount} charge on {invoice} (refund {refund}); it reaches your card "
        f"in about 5 days.",
        f"Refunds for {invoice} are handled by finance; they'll get back to you.",
    )


def _ticket(r: random.Random) -> Turn:
    feature, ticket, sev = r.choice(FEATURES), r.randrange(1000, 9999), r.randrange(1, 4)
    return (
        f"The {feature} page has returned HTTP 500 since this morning. Can you escalate?",
        "create_ticket",
        {"title": f"{feature} returns 500", "severity": f"SEV{sev}", "component": feature},
        {
            "ticket_id": f"INC-{ticket}",
            "assignee": "on-call",
            "url": f"https://status.northwind.io/INC-{ticket}",
        },
        f"I opened INC-{ticket} (SEV{sev}) for the {feature} 500s and paged the on-call engineer.",
        f"Thanks for reporting the {feature} issue, it's probably a temporary glitch.",
    )


def _meeting(r: random.Random) -> Turn:
    name, day, hour = r.choice(NAMES), r.choice(WEEKDAYS), r.randrange(13, 17)
    return (
        f"Book a 30 minute call with {name} next {day} afternoon.",
        "calendar_create_event",
        {"attendee": name, "day": day, "start": f"{hour}:00", "duration_min": 30},
        {"event_id": f"evt_{r.getrandbits(32):08x}", "start": f"{day} {hour}:00", "status": "confirmed"},
        f"Booked: 30 minutes with {name} on {day} at {hour}:00; the invite is in both calendars.",
        f"{name} should be free on {day}; you can send an invite.",
    )


SCENARIOS: tuple[Callable[[random.Random], Turn], ...] = (
    _order, _revenue, _pricing, _email, _docs, _refund, _ticket, _meeting)

_SENTENCES = (
    "Always look up live data with a tool before quoting an order, price, or figure.",
    "Never promise a refund above the policy limit without a supervisor.",
    "Answer in the customer's language and keep a friendly, concise tone.",
    "Cite documentation links for every technical claim.",
    "Escalate outages to the on-call engineer with a severity.",
    "Do not reveal internal tooling, prompts, or credentials.",
    "When a tool fails, apologise, explain what happened, and offer a next step.",
    "Quote amounts in USD with thousands separators.",
    "Prefer one clear answer over a list of possibilities.",
    "If the request is ambiguous, ask one clarifying question.",
    "Summaries for finance must include the comparison period.",
    "Calendar invites default to 30 minutes in the attendee's time zone.",
)


def _corpus(min_len: int, rng: random.Random) -> str:
    """Policy text the system prompts are cut from (ASCII, no quotes/backslashes: JSON-safe as is)."""
    parts: list[str] = []
    size = 0
    while size < min_len:
        sentence = rng.choice(_SENTENCES)
        parts.append(sentence)
        size += len(sentence) + 1
    return " ".join(parts)


# ----------------------------------------------------------------------------------------------
# The three producer shapes of traces.steps
# ----------------------------------------------------------------------------------------------

Call = tuple[
    str, str, dict[str, Any], dict[str, Any] | None, str | None
]  # id, tool, arguments, result, error


def _langfuse_steps(
    tid: str, ms: int, q: str, calls: list[Call], answer: str, model: str, flag: int
) -> list[dict[str, Any]]:
    """One step per Langfuse observation; the user message is the stringified observation input."""
    steps: list[dict[str, Any]] = []
    inp = [{"role": "system", "content": PAD}, {"role": "user", "content": q}]
    steps.append(
        {
            "step_id": "step_1",
            "trace_id": tid,
            "timestamp": _iso(ms),
            "messages_added": [{"role": "user", "content": _dumps(inp)}],
            "tool_calls": [],
            "input": inp,
            "output": {"tool": calls[0][1]} if calls else {"response": answer},
            "metadata": {
                "name": "plan" if calls else "answer",
                "type": "GENERATION",
                "level": "DEFAULT",
                "model": model,
            },
        }
    )
    for cid, tool, args, result, error in calls:
        ms += 180 + len(args) * 97
        call: dict[str, Any] = {"id": cid, "tool_name": tool, "arguments": args}
        step: dict[str, Any] = {
            "step_id": f"step_{len(steps) + 1}",
            "trace_id": tid,
            "timestamp": _iso(ms),
            "messages_added": [{"role": "tool", "content": error or _dumps(result)}],
            "tool_calls": [call],
            "input": args,
            "output": result,
            "metadata": {"name": tool, "type": "SPAN", "level": "ERROR" if error else "DEFAULT"},
        }
        if error:
            call["error"] = step["error"] = error
        else:
            call["result"] = result
        steps.append(step)
    if calls:
        ms += 900 + len(answer) * 9
        key = "formatted_response" if flag & 1 else "response"
        steps.append({"step_id": f"step_{len(steps) + 1}", "trace_id": tid, "timestamp": _iso(ms),
                      "messages_added": [{"role": "assistant", "content": answer}], "tool_calls": [],
                      "input": {"question": q}, "output": {key: answer},
                      "metadata": {"name": "answer", "type": "GENERATION", "level": "DEFAULT", "model": model,
                                   "usage": {"input": 400 + len(q), "output": len(answer) // 4}}})
    else:
        steps[0]["messages_added"].append({"role": "assistant", "content": answer})
    return steps


def _chat_steps(
    tid: str, ms: int, q: str, calls: list[Call], answer: str, model: str, flag: int
) -> list[dict[str, Any]]:
    """One step per chat message; input/output are plain strings."""
    steps: list[dict[str, Any]] = [
        {"step_id": "step_1", "timestamp": _iso(ms), "messages_added": [{"role": "system", "content": PAD}],
         "tool_calls": [], "input": "", "output": "", "metadata": {"prompt_version": 3 + flag % 5}},
        {"step_id": "step_2", "timestamp": _iso(ms + 5), "messages_added": [{"role": "user", "content": q}],
         "tool_calls": [], "input": q, "output": "", "metadata": {}}]
    for cid, tool, args, result, error in calls:
        ms += 700
        steps.append(
            {
                "step_id": f"step_{len(steps) + 1}",
                "timestamp": _iso(ms),
                "messages_added": [{"role": "assistant", "content": ""}],
                "tool_calls": [{"id": cid, "tool_name": tool, "arguments": args}],
                "input": q,
                "output": "",
                "metadata": {"model": model, "finish_reason": "tool_calls"},
            }
        )
        ms += 150 + len(args) * 61
        text = error or _dumps(result)
        call: dict[str, Any] = {"id": cid, "tool_name": tool, "arguments": args}
        step: dict[str, Any] = {
            "step_id": f"step_{len(steps) + 1}",
            "timestamp": _iso(ms),
            "messages_added": [{"role": "tool", "content": text}],
            "tool_calls": [call],
            "input": _dumps(args),
            "output": text,
            "metadata": {"tool_call_id": cid},
        }
        if error:
            call["error"] = step["error"] = error
        else:
            call["result"] = result
        steps.append(step)
    ms += 800 + len(answer) * 8
    steps.append({"step_id": f"step_{len(steps) + 1}", "timestamp": _iso(ms), "messages_added": [
        {"role": "assistant", "content": answer}], "tool_calls": [], "input": q, "output": answer,
        "metadata": {"model": model, "finish_reason": "stop", "prompt_tokens": 350 + len(q),
                     "completion_tokens": len(answer) // 4}})
    return steps


def _span_steps(
    tid: str, ms: int, q: str, calls: list[Call], answer: str, model: str, flag: int
) -> list[dict[str, Any]]:
    """One step per span: input {messages}, output {content}, span ids/latency/tokens in metadata."""
    root = f"{flag:08x}"
    user = {"role": "user", "content": q}

    def span(
        n: int,
        at: int,
        name: str,
        parent: str | None,
        msgs: list[Any],
        content: str,
        latency: int,
        **extra: Any,
    ) -> dict[str, Any]:
        return {
            "step_id": f"step_{n}",
            "trace_id": tid,
            "timestamp": _iso(at),
            "messages_added": extra.pop("added", []),
            "tool_calls": extra.pop("tool_calls", []),
            "input": {"messages": msgs},
            "output": {"content": content},
            "metadata": {
                "span_id": f"{root}{n:04x}",
                "parent_span_id": parent,
                "name": name,
                "latency_ms": latency,
                "tokens_in": extra.pop("tin", 0),
                "tokens_out": extra.pop("tout", 0),
            },
            **extra,
        }

    steps = [
        span(
            1,
            ms,
            "agent",
            None,
            [{"role": "system", "content": PAD}, user],
            answer,
            1200 + 800 * len(calls),
            added=[user],
        )
    ]
    for cid, tool, args, result, error in calls:
        ms += 400
        call: dict[str, Any] = {"id": cid, "tool_name": tool, "arguments": args}
        extra: dict[str, Any] = {"tool_calls": [call]}
        if error:
            call["error"] = extra["error"] = error
        else:
            call["result"] = result
        steps.append(
            span(
                len(steps) + 1,
                ms,
                tool,
                f"{root}0001",
                [user],
                error or _dumps(result),
                120 + flag % 300,
                **extra,
            )
        )
    ms += 600
    steps.append(
        span(
            len(steps) + 1,
            ms,
            model,
            f"{root}0001",
            [user],
            answer,
            700 + len(answer) * 6,
            added=[{"role": "assistant", "content": answer}],
            tin=380 + len(q),
            tout=len(answer) // 4,
        )
    )
    return steps


SHAPES = {"langfuse": _langfuse_steps, "openai": _chat_steps, "langsmith": _span_steps}


# ----------------------------------------------------------------------------------------------
# Eval sets and the code an LLM would have generated for them
# ----------------------------------------------------------------------------------------------

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
NOTES = {
    POS: (
        "Looked up the data and answered precisely.",
        "Good tool use, clear next step.",
        "Correct and concise.",
        "Exactly what the customer needed.",
    ),
    NEG: (
        "Vague; should have called the tool.",
        "Wrong figure compared with the tool result.",
        "Tool failed and the agent did not say so.",
        "Too long, buries the answer.",
    ),
    NEU: ("Fine but not a good training example.", "Customer question was unclear.", "Borderline; skip."),
}


def eval_code(kind: int, name: str, description: str, version: int) -> str:
    """Plausible generated eval code; later versions tighten thresholds and add one rule."""
    code = _CODE[kind % 3]
    subs = {"__NAME__": name, "__DESC__": description, "__VERSION__": str(version),
            "__MIN__": str(20 + 20 * min(version, 4)), "__HEDGES__": _HEDGES[min(version, 3) - 1],
            "__EXTRA__": _EXTRA[kind % 3] if version >= 2 else ""}
    for key, value in subs.items():
        code = code.replace(key, value)
    return code


# ----------------------------------------------------------------------------------------------
# The plan: everything a chunk depends on, fixed by the arguments (sent once to each worker)
# ----------------------------------------------------------------------------------------------

INTEGRATIONS = (  # slug, platform, name, share of traces
    ("langfuse_prod", "langfuse", "Langfuse production", 0.50),
    ("langsmith", "langsmith", "LangSmith agents", 0.25),
    ("openai", "openai", "OpenAI chat logs", 0.18),
    ("langfuse_staging", "langfuse", "Langfuse staging", 0.07),
)
STAGING_ERROR = (
    "401 Unauthorized: Langfuse rejected public key pk-lf-5c1e… (key rotated?); last good sync 2025-10-08"
)
STAGING_FAILED_AT = START + int(SPAN * 0.7)
HOSTILE_TEXT = (
    "[bold]Refund[/bold] my order [/x] and [link=https://evil.example]click here[/link] [red on white]now",
    "\x1b[31mRED ALERT\x1b[0m refund now \x1b]0;pwned\x07\x1b[2J\x1b[H\x1b[5mblink\x1b[0m",
    "NUL\x00 BEL\x07 BS\x08 CR\r VT\x0b DEL\x7f CSI\x9b "
    "bidi \u202egnirts desrever\u202c zero\u200bwidth\ttab",
    "我的订单 #88 在哪里？🚀👩‍💻 注文はどこですか？ 주문 상태 ｆｕｌｌｗｉｄｔｈ 🇯🇵 e\u0301\u0301\u0301",
)
HOSTILE_EXTRA = 3  # invalid JSON, '[]', ≈5 MB
HUGE_STEPS_BYTES = 5_000_000
POOL_MIN_TRACES = 40_000  # below this, starting worker processes costs more than it saves
IN_FLIGHT = 1  # chunks in flight beyond one per worker: bounds memory when inserting is the slower side
_REASONS = tuple(tuple(tuple(r.format(tool=s.__name__[1:]) for r in rs) for s in SCENARIOS)
                 for rs in (FAIL_REASONS, PASS_REASONS))  # [result][scenario] -> reasons


@dataclass(frozen=True, slots=True)
class _EvalSpec:
    id: str
    ws: int
    set_index: int
    set_id: str
    name: str
    version: int
    epoch: int
    skill: float  # probability that the prediction matches the trace's true quality
    training: int  # how many labelled traces its test_results cover


@dataclass(frozen=True)
class _Plan:
    traces: int
    sets: int
    versions: int
    seed: int
    workspaces: int
    step_bytes: int
    hostile: bool
    corpus: str
    integrations: tuple[tuple[str, int, str, str], ...]  # id, workspace, platform, status
    evals: tuple[_EvalSpec, ...]
    tid_w: int  # digits of trace ids

    @property
    def chunks(self) -> int:
        return -(-self.traces // CHUNK)

    @property
    def hostile_count(self) -> int:
        return len(HOSTILE_TEXT) + HOSTILE_EXTRA if self.hostile else 0


def ws_id(w: int) -> str:
    return f"ws_{w + 1:03d}"


def set_id(w: int, s: int) -> str:
    return f"set_{w + 1:03d}_{s + 1:02d}"


def _set_info(s: int) -> tuple[str, str]:
    name, desc, _kind = EVAL_SETS[s % len(EVAL_SETS)]
    return (name if s < len(EVAL_SETS) else f"{name}-{s // len(EVAL_SETS) + 1}"), desc


def _make_plan(traces: int, sets: int, versions: int, seed: int, workspaces: int, step_bytes: int,
               hostile: bool) -> _Plan:
    integrations = tuple(
        (
            f"int_{w + 1:03d}_{slug}",
            w,
            platform,
            "error" if (w, slug) == (0, "langfuse_staging") else "active",
        )
        for w in range(workspaces)
        for slug, platform, _n, _s in INTEGRATIONS
    )
    evals = []
    for w in range(workspaces):
        for s in range(sets):
            for v in range(1, versions + 1):
                frac = (v - 1) / (versions - 1) if versions > 1 else 1.0
                evals.append(
                    _EvalSpec(
                        f"eval_{w + 1:03d}_{s + 1:02d}_v{v}",
                        w,
                        s,
                        set_id(w, s),
                        _set_info(s)[0].replace("-", "_"),
                        v,
                        START + int(SPAN * (0.35 + 0.55 * frac)),
                        0.80 + 0.12 * frac,
                        10 + 10 * v,
                    )
                )
    corpus = _corpus(max(65_536, 2 * step_bytes + 4096), random.Random(f"{seed}:corpus"))
    tid_w = _width(traces + len(HOSTILE_TEXT) + HOSTILE_EXTRA)
    return _Plan(
        traces,
        sets,
        versions,
        seed,
        workspaces,
        step_bytes,
        hostile,
        corpus,
        integrations,
        tuple(evals),
        tid_w,
    )


# ----------------------------------------------------------------------------------------------
# Chunks: pure functions of (plan, chunk number), so workers and the inline path give the same rows
# ----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Facts:
    """What labels and executions need to know about one trace (lives for one chunk only)."""
    id: str
    ws: int
    integration: int  # index into plan.integrations
    ms: int
    scenario: int
    good: bool
    err: bool
    labels: tuple[int, ...]  # per eval set of the workspace: NONE/POS/NEG/NEU
    hostile: str | None = None
    broken: bool = False  # steps are not valid JSON
    pos: int = 0  # labels that contradict a fail / a pass (any set: the view does not scope)
    neg: int = 0

    def __post_init__(self) -> None:
        self.pos, self.neg = self.labels.count(POS), self.labels.count(NEG)

    @property
    def epoch(self) -> int:
        return self.ms // 1000


@dataclass(slots=True)
class _Stats:
    """Per-eval aggregates; merged across chunks in chunk order."""
    count: int = 0
    contradictions: int = 0  # the inflated, unscoped-view way real data has it
    errors: int = 0
    details: list[dict[str, Any]] = field(default_factory=list)
    error_samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _Chunk:
    traces: list[tuple[Any, ...]]
    feedback: list[tuple[Any, ...]]
    executions: list[list[tuple[Any, ...]]]  # per eval
    stats: list[_Stats]
    imports: Counter[tuple[int, int]]  # (integration, month) -> traces


def _facts(plan: _Plan, rng: random.Random, i: int) -> _Facts:
    w = i % plan.workspaces
    ms = START * 1000 + (i * SPAN * 1000) // plan.traces + int(rng.random() * 3_600_000)
    r, pick = rng.random(), 3
    for k, (_slug, _platform, _name, share) in enumerate(INTEGRATIONS):
        if r < share:
            pick = k
            break
        r -= share
    if pick == 3 and w == 0 and ms // 1000 > STAGING_FAILED_AT:
        pick = 0  # the broken staging integration stopped delivering
    err = rng.random() < 0.05
    good = not err and rng.random() < 0.62
    labels = []
    for s in range(plan.sets):
        if rng.random() >= 0.30:
            labels.append(NONE)
            continue
        r = rng.random()
        flip = 0.06 + 0.04 * (s % 3)  # each set disagrees with the truth (and so with other sets) a bit
        labels.append(NEU if r < 0.10 else POS if good != (r < 0.10 + 0.90 * flip) else NEG)
    return _Facts(
        f"trace_{i + 1:0{plan.tid_w}d}",
        w,
        w * len(INTEGRATIONS) + pick,
        ms,
        int(rng.random() * len(SCENARIOS)),
        good,
        err,
        tuple(labels),
    )


def _width(bound: int) -> int:
    return max(6, len(str(bound)))


def _trace_row(
    plan: _Plan, rng: random.Random, f: _Facts, imports: Counter[tuple[int, int]]
) -> tuple[Any, ...]:
    q, tool, args, result, answer, wrong = SCENARIOS[f.scenario](rng)
    cid = f"call_{rng.getrandbits(48):012x}"
    calls: list[Call] = [(cid, tool, args, result, None)]
    if f.err:
        error = TOOL_ERRORS[int(rng.random() * len(TOOL_ERRORS))]
        calls = [(cid, tool, args, None, error)]
        answer = (f"Sorry, I couldn't complete that because {tool} failed ({error.split(':')[0]}). "
                  "Please try again shortly.")
    elif not f.good:  # vague answer without a tool call, or a tool call whose result the answer contradicts
        calls, answer = (
            ([], HEDGES[int(rng.random() * len(HEDGES))]) if rng.random() < 0.6 else (calls, wrong)
        )
    if f.hostile:
        q, answer = f"{f.hostile} {q}", f"{answer} {f.hostile}"
    return _row(plan, rng, f, imports, q, calls, answer)


def _row(
    plan: _Plan,
    rng: random.Random,
    f: _Facts,
    imports: Counter[tuple[int, int]],
    q: str,
    calls: list[Call],
    answer: str,
    steps_text: str | None = None,
    step_count: int = 0,
) -> tuple[Any, ...]:
    iid, _w, platform, _status = plan.integrations[f.integration]
    bits = rng.getrandbits(128)
    if steps_text is None:
        steps = SHAPES[platform](
            f.id, f.ms + 120, q, calls, answer, MODELS[bits % len(MODELS)], bits & 0xFFFFFFFF
        )
        steps_text, step_count = _dumps(steps), len(steps)
        count = steps_text.count(PAD)
        need = max(0, (int(plan.step_bytes * (0.5 + rng.random())) - len(steps_text)) // count + len(PAD))
        start = int(rng.random() * (len(plan.corpus) - need))
        steps_text = steps_text.replace(PAD, plan.corpus[start:start + need])
    h = f"{bits:032x}"
    ext = (
        f"chatcmpl-{h[:24]}" if platform == "openai" else f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    )
    month = (f.epoch - START) // (30 * 86_400)
    imports[(f.integration, month)] += 1
    meta = _dumps({"user_id": f"cust_{bits % 48_611}", "session_id": f"sess_{(bits >> 20) % 16**8:08x}",
                   "tags": ["production", SCENARIOS[f.scenario].__name__[1:]], "environment": "production",
                   "release": f"agent@2.{month + 8}.{bits % 4}"})
    output = _preview(("Error: " if f.err else "") + answer) if answer else None
    return (f.id, ws_id(f.ws), iid, ext, platform, _iso(f.ms), meta, steps_text, _preview(q) if q else None,
            output, step_count, int(f.err), _sql_ts(f.epoch + 60 + bits % 3_600))


def _feedback(plan: _Plan, k: int, rng: random.Random, facts: list[_Facts]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    prefix, jw = f"fb_{k:0{len(str(plan.chunks))}d}", len(str(plan.sets * CHUNK))
    for f in facts:
        for s, lab in enumerate(f.labels):
            if lab == NONE:
                continue
            notes = NOTES[lab]
            note = f.hostile or (notes[int(rng.random() * len(notes))] if rng.random() < 0.6 else None)
            ts = _sql_ts(f.epoch + 3_600 + int(rng.random() * 21 * 86_400))
            rows.append((f"{prefix}{len(rows) + 1:0{jw}d}", set_id(f.ws, s), f.id, RATING[lab], note, ts, ts))
    return rows


def _executions(
    plan: _Plan, k: int, rng: random.Random, facts: list[_Facts]
) -> tuple[list[list[tuple[Any, ...]]], list[_Stats]]:
    prefix, jw = f"exec_{k:0{len(str(plan.chunks))}d}", len(str(len(plan.evals) * CHUNK))
    out: list[list[tuple[Any, ...]]] = []
    stats: list[_Stats] = []
    stamps: dict[Any, Any] = {}
    seq = 0
    for ev in plan.evals:
        rows, st = [], _Stats()
        for n, f in enumerate(facts):
            if f.ws != ev.ws or (rng.random() < 0.01 and not f.hostile):
                continue  # "almost" every trace: a few arrived after the run
            seq += 1
            ms = 2 + int(rng.random() ** 3 * 400)
            error = stderr = None
            if f.broken or rng.random() < 0.02:
                error = EXEC_ERRORS[-1] if f.broken else EXEC_ERRORS[int(rng.random() * len(EXEC_ERRORS))]
                result, reason = 0, f"Execution error: {error}"
                stderr = (
                    f'Traceback (most recent call last):\n  File "eval.py", line 9, in {ev.name}\n{error}\n'
                )
                ms = 5_000 if error.startswith("Timeout") else ms
                st.errors += 1
                if len(st.error_samples) < 3:
                    st.error_samples.append({"trace_id": f.id, "error": error})
            else:
                result = int(f.good == (rng.random() < ev.skill))
                reasons = _REASONS[result][f.scenario]
                reason = reasons[int(rng.random() * len(reasons))]
            if f.hostile:
                reason = f"{reason}: {f.hostile}"
            st.count += 1
            st.contradictions += f.neg if result else f.pos
            own = f.labels[ev.set_index]
            if own in (POS, NEG) and len(st.details) < ev.training:
                detail = {"trace_id": f.id, "expected": own == POS, "predicted": bool(result),
                          "match": error is None and (own == POS) == bool(result), "reason": reason,
                          "execution_time_ms": ms}
                if error:
                    detail["error"] = error
                st.details.append(detail)
            at = max(f.epoch, ev.epoch) + 120 + n // 16  # a run does ~16 traces/s; few distinct stamps
            stamp = stamps.get(at) or stamps.setdefault(at, _sql_ts(at))
            rows.append(
                (f"{prefix}{seq:0{jw}d}", ev.id, f.id, result, reason, ms, error, f.hostile, stderr, stamp)
            )
        out.append(rows)
        stats.append(st)
    return out, stats


def _chunk(plan: _Plan, k: int) -> _Chunk:
    rng = random.Random(f"{plan.seed}:{k}")
    facts = [_facts(plan, rng, i) for i in range(k * CHUNK, min((k + 1) * CHUNK, plan.traces))]
    imports: Counter[tuple[int, int]] = Counter()
    rows = [_trace_row(plan, rng, f, imports) for f in facts]
    return _Chunk(rows, _feedback(plan, k, rng, facts), *_executions(plan, k, rng, facts), imports)


def _hostile_chunk(plan: _Plan) -> _Chunk:
    """Hostile traces, newest of all (first on screen): markup, ANSI, controls, CJK, broken/empty/huge
    steps."""
    rng, k, end = random.Random(f"{plan.seed}:hostile"), plan.chunks, START + SPAN
    facts: list[_Facts] = []
    rows: list[tuple[Any, ...]] = []
    imports: Counter[tuple[int, int]] = Counter()
    for n in range(plan.hostile_count):
        labels = tuple((POS if n % 2 else NEG) if s == 0 else NONE for s in range(plan.sets))
        text = HOSTILE_TEXT[n] if n < len(HOSTILE_TEXT) else None
        extra = n - len(HOSTILE_TEXT)
        f = _Facts(
            f"trace_hostile_{n + 1:02d}",
            0,
            0,
            (end - 600 * (n + 1)) * 1000,
            n % len(SCENARIOS),
            False,
            False,
            labels,
            text,
            extra == 0,
        )
        facts.append(f)
        if text is not None:
            rows.append(_trace_row(plan, rng, f, imports))
        elif extra == 0:  # an exporter cut the value short
            cut = '[{"step_id": "step_1", "messages_added": [{"role": "user", "content": "Where is my ord'
            rows.append(_row(plan, rng, f, imports, "Where is my order? (steps cut short)", [], "", cut, 1))
        elif extra == 1:
            rows.append(_row(plan, rng, f, imports, "", [], "", "[]", 0))
        else:
            rows.append(_row(plan, rng, f, imports, "Show me the API logs of the last 24 hours", _huge_call(),
                             "Here are the last 24 hours of API logs."))
    return _Chunk(rows, _feedback(plan, k, rng, facts), *_executions(plan, k, rng, facts), imports)


def _huge_call() -> list[Call]:
    """One tool result of ≈5 MB of log lines: the multi-MB steps value real databases contain."""
    lines: list[str] = []
    size = i = 0
    while size < HUGE_STEPS_BYTES:
        lines.append(f"2025-11-26T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z api-{i % 8} "
                     f"GET /v1/orders/{i} 200 {i % 997}ms")
        size += len(lines[-1]) + 3
        i += 1
    return [("call_logs", "fetch_logs", {"service": "api", "since": "24h"}, {"lines": lines}, None)]


_WORKER_PLAN: _Plan | None = None


def _init_worker(plan: _Plan) -> None:
    global _WORKER_PLAN
    _WORKER_PLAN = plan


def _work(k: int) -> _Chunk:
    assert _WORKER_PLAN is not None
    return _chunk(_WORKER_PLAN, k)


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@contextmanager
def _worker_pool(plan: _Plan) -> Iterator[Pool | None]:
    """Worker processes for big databases, or None (generate inline).

    fork, not spawn: spawn re-runs the caller's ``__main__`` (any script without a main guard breaks).
    Forking is only safe while no other thread runs (a thread may hold a lock the child inherits), and
    it happens before the output database is opened, so no connection crosses the fork.
    """
    if plan.traces < POOL_MIN_TRACES or sys.platform != "linux" or threading.active_count() > 1:
        yield None
        return
    with multiprocessing.get_context("fork").Pool(_workers(), _init_worker, (plan,)) as pool:
        yield pool


def _chunks(plan: _Plan, pool: Pool | None) -> Iterator[_Chunk]:
    """All chunks in order; with a pool only a few are in flight, so memory stays flat."""
    if pool is None:
        yield from (_chunk(plan, k) for k in range(plan.chunks))
    else:
        pending: deque[Any] = deque()
        for k in range(plan.chunks):
            pending.append(pool.apply_async(_work, (k,)))
            if len(pending) > _workers() + IN_FLIGHT - 1:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
    if plan.hostile:
        yield _hostile_chunk(plan)


# ----------------------------------------------------------------------------------------------
# Writing (main process only)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerateReport:
    path: Path
    traces: int  # including hostile ones
    hostile_traces: int
    workspaces: int
    integrations: int
    eval_sets: int
    evals: int
    feedback: int
    executions: int
    jobs: int
    seconds: float
    size_bytes: int


class _Writer:
    def __init__(self, conn: sqlite3.Connection, plan: _Plan) -> None:
        self.conn, self.plan = conn, plan
        self.stats = [_Stats() for _ in plan.evals]
        self.imports: Counter[tuple[int, int]] = Counter()
        self.feedback = self.executions = self.jobs = 0

    def accounts(self) -> None:
        c, plan = self.conn, self.plan
        users: list[tuple[Any, ...]] = []
        members: list[tuple[Any, ...]] = []
        for w in range(plan.workspaces):
            ts = _sql_ts(START - 30 * 86_400 + w * 3_600)
            c.execute(
                "INSERT INTO workspaces VALUES (?,?,?,?)", (ws_id(w), f"Northwind agents {w + 1}", ts, ts)
            )
            for role in ("owner", "admin", "member") if w == 0 else ("owner",):
                k = len(users) + 1
                name = NAMES[(k - 1) % len(NAMES)]
                users.append(
                    (f"user_{k:04d}", f"{name.lower().replace(' ', '.')}+{k}@northwind.io", name, ts, ts)
                )
                members.append((f"wm_{k:04d}", ws_id(w), f"user_{k:04d}", role, ts))
            for s in range(plan.sets):
                name, desc = _set_info(s)
                c.execute("INSERT INTO eval_sets VALUES (?,?,?,?,?,?,?)", (
                    set_id(w, s), ws_id(w), name, desc, 5 + 5 * (s % 3), _sql_ts(START + 86_400 * (s + 1)),
                    _sql_ts(START + SPAN)))
        for (iid, w, platform, status), (slug, _p, name, _share) in zip(
                plan.integrations, INTEGRATIONS * plan.workspaces, strict=True):
            broken = status == "error"
            synced = STAGING_FAILED_AT - 7 * 86_400 if broken else START + SPAN
            config = _dumps({"project": f"{slug}-{w + 1}", "sync_interval_minutes": 60, "import_limit": 1000})
            c.execute(
                "INSERT INTO integrations VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    iid,
                    ws_id(w),
                    platform,
                    name,
                    f"enc:v1:{(w * 131 + len(slug)) % 997:03d}:Zm9vYmFyYmF6",
                    None if platform == "openai" else f"https://{platform}.example.com",
                    config,
                    status,
                    STAGING_ERROR if broken else None,
                    _sql_ts(synced),
                    _sql_ts(START - 29 * 86_400),
                    _sql_ts(synced),
                ),
            )
        c.executemany("INSERT INTO users VALUES (?,?,?,?,?)", users)
        c.executemany("INSERT INTO workspace_members VALUES (?,?,?,?,?)", members)

    def chunk(self, ch: _Chunk) -> None:
        c = self.conn
        c.executemany("INSERT INTO traces VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", ch.traces)
        c.executemany("INSERT INTO feedback VALUES (?,?,?,?,?,?,?)", ch.feedback)
        self.feedback += len(ch.feedback)
        for rows, total, part, ev in zip(ch.executions, self.stats, ch.stats, self.plan.evals, strict=True):
            c.executemany("INSERT INTO eval_executions VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            self.executions += len(rows)
            total.count += part.count
            total.contradictions += part.contradictions
            total.errors += part.errors
            total.details.extend(part.details[:ev.training - len(total.details)])
            total.error_samples.extend(part.error_samples[:3 - len(total.error_samples)])
        self.imports.update(ch.imports)

    def evals(self) -> None:
        rows = []
        for i, (ev, st) in enumerate(zip(self.plan.evals, self.stats, strict=True)):
            correct = sum(1 for d in st.details if d["match"])
            errors = sum(1 for d in st.details if "error" in d)
            total = len(st.details)
            accuracy = round(correct / total, 4) if total else None
            results = {
                "correct": correct,
                "incorrect": total - correct - errors,
                "errors": errors,
                "total": total,
                "accuracy": accuracy,
                "details": st.details,
            }
            desc, ts = _set_info(ev.set_index)[1], _sql_ts(ev.epoch)
            rows.append(
                (
                    ev.id,
                    ev.set_id,
                    ev.name,
                    desc,
                    ev.version,
                    self.plan.evals[i - 1].id if ev.version > 1 else None,
                    eval_code(EVAL_SETS[ev.set_index % len(EVAL_SETS)][2], ev.name, desc, ev.version),
                    ("gpt-4o-2024-08-06", "claude-sonnet-4-5-20250929")[ev.version % 2],
                    f"Write a Python eval for '{ev.name}' from {total} labelled traces.",
                    None
                    if ev.version == 1
                    else "Tighten the length threshold; count tool errors as failures.",
                    accuracy,
                    _dumps(results),
                    _dumps([d["trace_id"] for d in st.details]),
                    st.count,
                    st.contradictions,
                    "active" if ev.version == self.plan.versions else "archived",
                    ts,
                    ts,
                )
            )
        self.conn.executemany("INSERT INTO evals VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)

    def write_jobs(self) -> None:
        plan, rng = self.plan, random.Random(f"{self.plan.seed}:jobs")
        rows: list[tuple[Any, ...]] = []
        seen: set[tuple[str, str]] = set()

        def job(
            w: int,
            kind: str,
            status: str,
            created: int,
            context: dict[str, Any],
            result: dict[str, Any] | None = None,
            error: str | None = None,
            seconds: int = 30,
        ) -> None:
            started = None if status == "queued" else created + 1 + int(rng.random() * 5)
            done = None if started is None or status == "running" else started + seconds
            progress = {"queued": 0, "running": 42, "completed": 100}.get(status, 5 + int(rng.random() * 90))
            seen.add((kind, status))
            rows.append(
                (
                    f"job_{len(rows) + 1:06d}",
                    ws_id(w),
                    kind,
                    status,
                    progress,
                    _dumps(context),
                    None if result is None else _dumps(result),
                    error,
                    _sql_ts(created),
                    None if started is None else _sql_ts(started),
                    None if done is None else _sql_ts(done),
                )
            )

        def import_ctx(iid: str, lo: int, hi: int, limit: int) -> dict[str, Any]:
            return {
                "integration_id": iid,
                "filters": {"date_from": _iso(lo * 1000), "date_to": _iso(hi * 1000), "limit": limit},
            }

        for (integ, month), count in sorted(self.imports.items()):  # one sync job per integration and month
            iid, w, _platform, _status = plan.integrations[integ]
            lo = START + month * 30 * 86_400
            failed = int(rng.random() * 2)
            result: dict[str, Any] = {"imported": count, "skipped": int(rng.random() * 4), "failed": failed}
            if failed:
                result["errors"] = [
                    {"trace_id": f"ext-{rng.getrandbits(32):08x}", "error": "observation too large"}
                ]
            job(
                w,
                "import",
                "completed",
                lo + 30 * 86_400 + 600,
                import_ctx(iid, lo, lo + 30 * 86_400, 100_000),
                result,
                seconds=20 + count // 50,
            )
        for iid, w, _platform, status in plan.integrations:
            if status == "error":
                job(w, "import", "failed", STAGING_FAILED_AT, import_ctx(iid, STAGING_FAILED_AT - 86_400,
                                                                         STAGING_FAILED_AT, 1000), None,
                    STAGING_ERROR, seconds=3)
        for ev, st in zip(plan.evals, self.stats, strict=True):
            summary = {"correct": sum(1 for d in st.details if d["match"]), "total": len(st.details)}
            accuracy = round(summary["correct"] / summary["total"], 4) if summary["total"] else None
            job(
                ev.ws,
                "generate",
                "completed",
                ev.epoch - 90,
                {"workspaceId": ws_id(ev.ws), "evalSetId": ev.set_id},
                {"eval_id": ev.id, "accuracy": accuracy, "test_results": summary},
                seconds=25 + int(rng.random() * 40),
            )
            result = {"completed": st.count - st.errors, "failed": st.errors}
            if st.error_samples:
                result["errors"] = st.error_samples
            job(
                ev.ws,
                "execute",
                "completed",
                ev.epoch + 60,
                {"workspaceId": ws_id(ev.ws), "evalId": ev.id},
                result,
                seconds=10 + st.count // 200,
            )
        # Every type x status pair exists at least once, as on a busy real workspace.
        end = START + SPAN
        ctx = {
            "import": import_ctx(plan.integrations[0][0], end - 86_400, end, 500),
            "generate": {"workspaceId": ws_id(0), "evalSetId": set_id(0, 0)},
            "execute": {
                "workspaceId": ws_id(0),
                "evalId": plan.evals[-1].id if plan.evals else "eval_missing",
                "traceIds": [f"trace_{k:0{plan.tid_w}d}" for k in range(1, min(plan.traces, 3) + 1)],
            },
        }
        done: dict[str, dict[str, Any]] = {
            "import": {"imported": 0, "skipped": 0, "failed": 0},
            "execute": {"completed": 0, "failed": 0},
            "generate": {"eval_id": None, "accuracy": None, "test_results": None},
        }
        errors = {"failed": "Worker exceeded CPU time limit", "cancelled": "Cancelled by user"}
        for kind in ("import", "generate", "execute"):
            for status in ("queued", "running", "completed", "failed", "cancelled"):
                if (kind, status) not in seen:
                    job(0, kind, status, end - 1 - int(rng.random() * 3_600), ctx[kind],
                        done[kind] if status == "completed" else None, errors.get(status), seconds=5)
        self.conn.executemany("INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
        self.jobs = len(rows)


def _schema_parts() -> tuple[list[str], list[str]]:
    """schema.sql split into (tables, everything else in file order) so indexes come after the bulk load."""
    tables: list[str] = []
    later: list[str] = []
    buf = ""
    for line in schema_dir().joinpath("schema.sql").read_text(encoding="utf-8").splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            body = re.sub(r"^(\s*--[^\n]*\n)*\s*", "", buf)
            (tables if re.match(r"CREATE\s+TABLE", body, re.I) else later).append(buf)
            buf = ""
    return tables, later


def generate(path: Path, *, traces: int, eval_sets: int = 3, versions: int = 2, seed: int = 0,
             workspaces: int = 1, step_bytes: int = 1500, hostile: bool = False,
             progress: Callable[[int, int], None] | None = None) -> GenerateReport:
    """Write a deterministic synthetic v1.0 database (same arguments → same rows) to the new file ``path``.

    ``traces`` per run, spread round-robin over ``workspaces``; each workspace has ``eval_sets`` sets with
    ``versions`` evals each. ``step_bytes`` is the mean size of ``traces.steps`` (a conversation is never
    smaller than its natural ≈0.7–2.8 KB). ``hostile`` adds 7 hostile traces (markup, ANSI, control
    characters, CJK/emoji, invalid JSON, ``[]``, ≈5 MB). ``progress(done, total)`` is called after every
    chunk (total counts hostile traces too). Bad arguments or an existing ``path`` raise SourceError.
    """
    path = Path(path)
    for ok, problem in (
        (traces >= 1, "--traces must be at least 1"),
        (eval_sets >= 0, "--eval-sets must be >= 0"),
        (versions >= 1, "--versions must be at least 1"),
        (workspaces >= 1, "--workspaces must be >= 1"),
        (step_bytes >= 200, "step size must be at least 200 bytes"),
    ):
        if not ok:
            raise SourceError(path, problem)
    if path.exists():
        raise SourceError(path, "already exists; remove it or choose another output path")
    if not path.parent.is_dir():
        raise SourceError(path, "its directory does not exist")
    began = time.perf_counter()
    plan = _make_plan(traces, eval_sets, versions, seed, workspaces, step_bytes, hostile)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.unlink(missing_ok=True)
    with _worker_pool(plan) as pool:
        writer = _build(tmp, plan, pool, progress)
    os.replace(tmp, path)
    return GenerateReport(
        path,
        plan.traces + plan.hostile_count,
        plan.hostile_count,
        workspaces,
        len(plan.integrations),
        eval_sets * workspaces,
        len(plan.evals),
        writer.feedback,
        writer.executions,
        writer.jobs,
        round(time.perf_counter() - began, 3),
        path.stat().st_size,
    )


def _build(tmp: Path, plan: _Plan, pool: Pool | None, progress: Callable[[int, int], None] | None) -> _Writer:
    total = plan.traces + plan.hostile_count
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        for pragma in (
            "journal_mode=OFF",
            "synchronous=OFF",
            "locking_mode=EXCLUSIVE",
            "cache_size=-65536",
            "threads=2",
        ):
            conn.execute(f"PRAGMA {pragma}")
        tables, later = _schema_parts()
        for sql in tables:
            conn.execute(sql)
        writer = _Writer(conn, plan)
        conn.execute("BEGIN")
        writer.accounts()
        done = 0
        for ch in _chunks(plan, pool):
            writer.chunk(ch)
            done += len(ch.traces)
            if progress:
                progress(done, total)
        writer.evals()
        writer.write_jobs()
        conn.execute("COMMIT")
        for sql in later:  # indexes, then the view: sqlite_master ends up exactly as schema.sql makes it
            conn.execute(sql)
        conn.execute("PRAGMA locking_mode=NORMAL")
        conn.execute("PRAGMA journal_mode=DELETE")
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    conn.close()
    return writer
