"""What Signoff shows in Slack, as Block Kit: the message that follows a request (built afresh
from its latest snapshot each time it changes) and the modal asking a rejecter why.

Pure functions of their arguments. Everything a person wrote (model names, comments, check
summaries) is escaped for Slack's mrkdwn (`&`, `<`, `>`), so it cannot become a link or a
mention, and cut to Block Kit's limits.
"""

from __future__ import annotations

import json
from typing import Any

from workflows.domain import CheckStatus, RequestSnapshot, RequestState

APPROVE_ACTION = "signoff_approve"
REJECT_ACTION = "signoff_reject"
REJECT_CALLBACK = "signoff_reject"
"""The `callback_id` of the reject modal, by which its `view_submission` is recognised."""
REASON_BLOCK = REASON_ACTION = "reason"
MAX_REASON = 500
"""The longest reason the modal takes: a comment's limit."""

_CHECK_MARK = {
    CheckStatus.PASSED: ":white_check_mark:",
    CheckStatus.FAILED: ":x:",
    CheckStatus.RUNNING: ":hourglass_flowing_sand:",
    CheckStatus.CANCELLED: ":heavy_minus_sign:",
}
_FIELD_MAX = 2000
_TEXT_MAX = 3000


def escape(text: str) -> str:
    """Text for mrkdwn: Slack's three control characters escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def move_of(request: RequestSnapshot) -> str:
    """`fraud-detector v7: None → Production`, unescaped."""
    return f"{request.model} v{request.version}: {request.from_stage or 'None'} → {request.target}"


def _approvals(request: RequestSnapshot) -> str:
    who = ", ".join(escape(approval.user_id) for approval in request.approvals)
    line = f"{len(request.approvals)} of {request.quorum}"
    return f"{line}: {who}" if who else line


def _checks(request: RequestSnapshot) -> str:
    if not request.checks:
        return "none"
    lines = [
        f"{_CHECK_MARK[check.status]} {escape(check.check_id)}"
        + (f": {escape(_cut(check.summary, 200))}" if check.summary else "")
        for check in request.checks
    ]
    return _cut("\n".join(lines), _FIELD_MAX)


def _headline(request: RequestSnapshot, page_url: str | None) -> str:
    move = escape(move_of(request))
    title = f"*<{page_url}|{move}>*" if page_url else f"*{move}*"
    text = f"{title}\nRequested by *{escape(request.requester)}*"
    if request.comment:
        text += f"\n>{escape(_cut(request.comment, 1000))}"
    return _cut(text, _TEXT_MAX)


def _state(request: RequestSnapshot) -> str:
    if request.state is RequestState.PENDING:
        waiting = max(request.quorum - len(request.approvals), 0)
        if waiting:
            return f"PENDING: {waiting} more approval(s) needed"
        return "PENDING: checks running"
    reason = f": {request.reason}" if request.reason else ""
    return escape(_cut(f"{request.state.value}{reason}", _FIELD_MAX))


def _buttons(request: RequestSnapshot) -> dict[str, Any]:
    move = move_of(request)
    return {
        "type": "actions",
        "block_id": "signoff_decide",
        "elements": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION,
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "value": request.id,
                "confirm": {
                    "title": {"type": "plain_text", "text": "Approve?"},
                    "text": {"type": "plain_text", "text": _cut(f"Approve {move}?", 300)},
                    "confirm": {"type": "plain_text", "text": "Approve"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            },
            {
                "type": "button",
                "action_id": REJECT_ACTION,
                "text": {"type": "plain_text", "text": "Reject"},
                "style": "danger",
                "value": request.id,
            },
        ],
    }


def request_message(
    request: RequestSnapshot, page_url: str | None
) -> tuple[str, list[dict[str, Any]]]:
    """The notification text and the blocks of the message that follows `request`; the
    Approve / Reject buttons only while it is waiting for decisions."""
    text = f"{move_of(request)}, requested by {request.requester}: {request.state.value}"
    fields = [
        ("State", _state(request)),
        ("Approvals", _approvals(request)),
        ("Checks", _checks(request)),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _headline(request, page_url)}},
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": f"*{name}*\n{value}"} for name, value in fields],
        },
    ]
    if request.state is RequestState.PENDING:
        blocks.append(_buttons(request))
    return escape(_cut(text, _TEXT_MAX)), blocks


def reject_modal(request: RequestSnapshot, response_url: str | None) -> dict[str, Any]:
    """The modal asking why; its `private_metadata` carries the request and where to tell the
    person how it went (Slack hands it back, signed, with the submission)."""
    metadata = json.dumps({"request_id": request.id, "response_url": response_url})
    return {
        "type": "modal",
        "callback_id": REJECT_CALLBACK,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": "Reject the request"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*{escape(_cut(move_of(request), 2900))}*"},
            },
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Why do you reject it?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_ACTION,
                    "multiline": True,
                    "max_length": MAX_REASON,
                },
            },
        ],
    }
