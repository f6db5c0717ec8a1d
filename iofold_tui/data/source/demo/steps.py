"""The three producer shapes of ``traces.steps`` (Langfuse observations, chat messages, LangSmith-like
spans), built from one conversation."""

from __future__ import annotations

from typing import Any

from iofold_tui.data.source.demo.text import dumps, iso_ms

PAD = "@@PAD@@"  # placeholder for the system prompt text that brings steps up to their target size


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
            "timestamp": iso_ms(ms),
            "messages_added": [{"role": "user", "content": dumps(inp)}],
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
            "timestamp": iso_ms(ms),
            "messages_added": [{"role": "tool", "content": error or dumps(result)}],
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
        steps.append({"step_id": f"step_{len(steps) + 1}", "trace_id": tid, "timestamp": iso_ms(ms),
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
        {"step_id": "step_1", "timestamp": iso_ms(ms), "messages_added": [{"role": "system", "content": PAD}],
         "tool_calls": [], "input": "", "output": "", "metadata": {"prompt_version": 3 + flag % 5}},
        {"step_id": "step_2", "timestamp": iso_ms(ms + 5), "messages_added": [{"role": "user", "content": q}],
         "tool_calls": [], "input": q, "output": "", "metadata": {}}]
    for cid, tool, args, result, error in calls:
        ms += 700
        steps.append(
            {
                "step_id": f"step_{len(steps) + 1}",
                "timestamp": iso_ms(ms),
                "messages_added": [{"role": "assistant", "content": ""}],
                "tool_calls": [{"id": cid, "tool_name": tool, "arguments": args}],
                "input": q,
                "output": "",
                "metadata": {"model": model, "finish_reason": "tool_calls"},
            }
        )
        ms += 150 + len(args) * 61
        text = error or dumps(result)
        call: dict[str, Any] = {"id": cid, "tool_name": tool, "arguments": args}
        step: dict[str, Any] = {
            "step_id": f"step_{len(steps) + 1}",
            "timestamp": iso_ms(ms),
            "messages_added": [{"role": "tool", "content": text}],
            "tool_calls": [call],
            "input": dumps(args),
            "output": text,
            "metadata": {"tool_call_id": cid},
        }
        if error:
            call["error"] = step["error"] = error
        else:
            call["result"] = result
        steps.append(step)
    ms += 800 + len(answer) * 8
    steps.append({"step_id": f"step_{len(steps) + 1}", "timestamp": iso_ms(ms), "messages_added": [
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
            "timestamp": iso_ms(at),
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
                error or dumps(result),
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
