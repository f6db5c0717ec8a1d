"""The plan: everything a chunk depends on, fixed by the arguments (sent once to each worker)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from iofold_tui.data.source.demo.evals import EVAL_SETS
from iofold_tui.data.source.demo.text import SPAN, START, policy_corpus

CHUNK = 5_000  # traces per chunk; fixed, because the chunk number seeds its RNG


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


@dataclass(frozen=True, slots=True)
class EvalSpec:
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
class Plan:
    traces: int
    sets: int
    versions: int
    seed: int
    workspaces: int
    step_bytes: int
    hostile: bool
    corpus: str
    integrations: tuple[tuple[str, int, str, str], ...]  # id, workspace, platform, status
    evals: tuple[EvalSpec, ...]
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


def set_info(s: int) -> tuple[str, str]:
    name, desc, _kind = EVAL_SETS[s % len(EVAL_SETS)]
    return (name if s < len(EVAL_SETS) else f"{name}-{s // len(EVAL_SETS) + 1}"), desc


def make_plan(traces: int, sets: int, versions: int, seed: int, workspaces: int, step_bytes: int,
               hostile: bool) -> Plan:
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
                    EvalSpec(
                        f"eval_{w + 1:03d}_{s + 1:02d}_v{v}",
                        w,
                        s,
                        set_id(w, s),
                        set_info(s)[0].replace("-", "_"),
                        v,
                        START + int(SPAN * (0.35 + 0.55 * frac)),
                        0.80 + 0.12 * frac,
                        10 + 10 * v,
                    )
                )
    corpus = policy_corpus(max(65_536, 2 * step_bytes + 4096), random.Random(f"{seed}:corpus"))
    tid_w = id_width(traces + len(HOSTILE_TEXT) + HOSTILE_EXTRA)
    return Plan(
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


def id_width(bound: int) -> int:
    return max(6, len(str(bound)))
