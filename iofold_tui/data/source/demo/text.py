"""The demo generator's content: the time axis, label values, value formatting, the conversation
scenarios (question, tool, arguments, result, answer, wrong answer), the policy text system prompts are
cut from, and the notes labellers leave."""

from __future__ import annotations

import calendar
import json
import random
import time
from collections.abc import Callable
from typing import Any

START = calendar.timegm((2025, 5, 1, 0, 0, 0))
SPAN = 210 * 86_400  # traces spread over ~7 months
NONE, POS, NEG, NEU = 0, 1, 2, 3
RATING = {POS: "positive", NEG: "negative", NEU: "neutral"}


def iso_ms(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def sql_ts(sec: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(sec))


def preview(text: str) -> str:
    """iofold's ≈200-character preview: a plain cut, control characters and newlines included."""
    return text if len(text) <= 200 else text[:197] + "..."


def dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


# Conversation content: scenarios produce (question, tool, args, result, answer, wrong answer)

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


def policy_corpus(min_len: int, rng: random.Random) -> str:
    """Policy text the system prompts are cut from (ASCII, no quotes/backslashes: JSON-safe as is)."""
    parts: list[str] = []
    size = 0
    while size < min_len:
        sentence = rng.choice(_SENTENCES)
        parts.append(sentence)
        size += len(sentence) + 1
    return " ".join(parts)


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
