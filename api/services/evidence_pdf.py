"""The evidence packet as a PDF, for people who do not read JSON: a title, a summary table,
then one section per part of the packet. Made with ReportLab from the same `EvidencePacket`
the JSON answer serializes, so both always say the same.

Text goes through `_text` (escaped for ReportLab's paragraph markup, with the glyphs the
embedded Bitstream Vera font lacks spelled out), never into markup as it stands.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    Flowable,
    Paragraph,
    Preformatted,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from api.models.evidence import EvidencePacket

_FONTS = Path(reportlab.__file__).parent / "fonts"
_MISSING_GLYPHS = str.maketrans({"→": "->", "✓": "v", "✗": "x"})
_ACTIVITIES = {
    "REQUESTED_TRANSITION": "Requested",
    "APPROVED_REQUEST": "Approved",
    "REJECTED_REQUEST": "Rejected",
    "CANCELLED_REQUEST": "Cancelled",
    "APPLIED_TRANSITION": "Applied",
    "SYSTEM_TRANSITION": "Closed by Signoff",
    "NEW_COMMENT": "Commented",
}
MAX_POLICY_LINES = 400
"""The pinned policy's text is shown up to this many lines (the JSON has all of it)."""


def _register_fonts() -> tuple[str, str, str]:
    """Vera (shipped with ReportLab) so names and comments in any Latin script show; the
    policy's YAML in Courier."""
    for name, file in (("Vera", "Vera.ttf"), ("Vera-Bold", "VeraBd.ttf")):
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, str(_FONTS / file)))
    return "Vera", "Vera-Bold", "Courier"


def _text(value: Any) -> str:
    if value is None or value == "":
        return "–"
    return escape(str(value).translate(_MISSING_GLYPHS))


def _when(ms: int | None) -> str:
    if ms is None:
        return "–"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class _Styles:
    def __init__(self) -> None:
        regular, bold, mono = _register_fonts()
        base = getSampleStyleSheet()
        self.title = ParagraphStyle("t", parent=base["Title"], fontName=bold, fontSize=17)
        self.h2 = ParagraphStyle("h2", parent=base["Heading2"], fontName=bold, spaceBefore=10)
        self.body = ParagraphStyle("b", parent=base["BodyText"], fontName=regular, fontSize=9.5)
        self.cell = ParagraphStyle("c", parent=self.body, fontSize=8.5, leading=10.5)
        self.head = ParagraphStyle("h", parent=self.cell, fontName=bold)
        self.mono = ParagraphStyle("m", parent=self.body, fontName=mono, fontSize=7, leading=8.5)


def _table(styles: _Styles, header: list[str], rows: list[list[Any]], widths: list[float]) -> Table:
    data = [[Paragraph(_text(h), styles.head) for h in header]]
    data += [[Paragraph(_text(cell), styles.cell) for cell in row] for row in rows]
    table = Table(data, colWidths=[w * mm for w in widths], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecf2")),
                ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#b0b8c4")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _summary(styles: _Styles, p: EvidencePacket) -> Table:
    s, rule = p.subject, p.rule
    approvers = [d for d in p.decisions if d.kind == "approval"]
    rows = [
        ["Model", s.model],
        ["Version", s.version],
        ["Move", f"{s.from_stage or 'None'} → {s.target}"],
        [
            "Kind",
            "Break-glass move (no checks or approvals)"
            if s.kind == "break_glass"
            else "Governed transition request",
        ],
        ["Outcome", s.state + (f" ({s.reason})" if s.reason else "")],
        ["Requested by", f"{s.requester} on {_when(s.created_timestamp)}"],
        [
            "Approved by",
            ", ".join(
                f"{d.user_id} ({', '.join(d.roles) or 'no role recorded'})" for d in approvers
            )
            or "nobody",
        ],
        ["Checks", ", ".join(f"{c.check_id}: {c.status}" for c in p.checks) or "none"],
        ["Rule", rule.words if rule else "not on record"],
        ["Policy hash", p.policy.hash],
        ["Source", p.model_version.source],
        ["Run", p.model_version.run_id],
    ]
    table = Table(
        [[Paragraph(_text(k), styles.head), Paragraph(_text(v), styles.cell)] for k, v in rows],
        colWidths=[35 * mm, 140 * mm],
    )
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#b0b8c4")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _evidence_text(evidence: dict[str, Any]) -> str:
    return "; ".join(f"{key}: {value}" for key, value in evidence.items()) or "–"


def _sections(styles: _Styles, p: EvidencePacket) -> list[Flowable]:
    out: list[Flowable] = []

    def section(title: str, *flowables: Flowable) -> None:
        out.append(Paragraph(_text(title), styles.h2))
        out.extend(flowables)

    rule = p.rule
    section(
        "The rule that applied",
        Paragraph(
            _text(rule.words if rule else "The pinned policy is not on record."), styles.body
        ),
        Paragraph(
            _text(
                f"Rule: {rule.label} (transitions[{rule.index}]); approvers: "
                f"{', '.join(rule.approver_roles) or 'nobody'}"
            )
            if rule
            else "",
            styles.body,
        ),
    )
    section(
        "Checks",
        _table(
            styles,
            ["Check", "Required", "Result", "Evidence"],
            [
                [c.check_id, c.requirement, f"{c.status}: {c.summary}", _evidence_text(c.evidence)]
                for c in p.checks
            ]
            or [["none", "", "", ""]],
            [35, 35, 45, 60],
        ),
    )
    section(
        "Approvals and rejections",
        _table(
            styles,
            ["Decision", "Person", "Roles", "Time", "Comment"],
            [
                [d.kind, d.user_id, ", ".join(d.roles), _when(d.timestamp), d.comment]
                for d in p.decisions
            ]
            or [["none", "", "", "", ""]],
            [25, 30, 35, 40, 45],
        ),
    )
    if p.break_glass_review is not None:
        r = p.break_glass_review
        acks = [
            [a.user_id, ", ".join(a.roles), _when(a.timestamp), a.comment]
            for a in r.acknowledgements
        ] or [["none yet", "", "", ""]]
        section(
            "Break-glass review",
            Paragraph(
                _text(
                    f"{r.state.value}: {r.quorum} acknowledgement(s) from "
                    f"{', '.join(r.roles)} due by {_when(r.deadline_timestamp)}"
                    + (
                        f"; overdue since {_when(r.overdue_timestamp)}"
                        if r.overdue_timestamp
                        else ""
                    )
                ),
                styles.body,
            ),
            _table(styles, ["Reviewer", "Roles", "Time", "Comment"], acks, [35, 40, 45, 55]),
        )
    section(
        "Comments",
        _table(
            styles,
            ["Person", "Time", "Comment"],
            [[c.user_id, _when(c.created_timestamp), c.comment] for c in p.comments]
            or [["none", "", ""]],
            [30, 45, 100],
        ),
    )
    section(
        "The full trail",
        _table(
            styles,
            ["Time", "Activity", "Person", "Move", "Comment"],
            [
                [
                    _when(e.timestamp),
                    e.activity_type,
                    e.user_id,
                    f"{e.from_stage or 'None'} → {e.to_stage or '–'}",
                    " — ".join(x for x in (e.comment, e.system_comment) if x),
                ]
                for e in p.trail
            ],
            [32, 33, 22, 28, 60],
        ),
    )
    missing = [
        f"{name.replace('_', ' ').capitalize()}: {note}"
        for name, note in p.notes.items()
        if name not in ("artifact_digest", "audit_chain_head")
    ]
    section(
        "Integrity",
        Paragraph(_text(f"Artifact digest: {p.artifact_digest or 'not recorded'}"), styles.body),
        Paragraph(_text(f"Audit chain head: {p.audit_chain_head or 'not recorded'}"), styles.body),
        Paragraph(
            _text(
                f"Policy hash {p.policy.hash}"
                + (
                    ""
                    if p.policy.hash_verified is None
                    else " (verified against the text below)"
                    if p.policy.hash_verified
                    else " (does NOT match the text below)"
                )
            ),
            styles.body,
        ),
        *[Paragraph(_text(line), styles.body) for line in missing],
    )
    if p.policy.text:
        lines = p.policy.text.splitlines()
        shown = "\n".join(lines[:MAX_POLICY_LINES])
        if len(lines) > MAX_POLICY_LINES:
            shown += f"\n… ({len(lines) - MAX_POLICY_LINES} more lines in the JSON packet)"
        section("The pinned policy", Preformatted(shown.translate(_MISSING_GLYPHS), styles.mono))
    return out


def render_pdf(packet: EvidencePacket) -> bytes:
    """The packet as PDF bytes (CPU-bound: call it off the event loop)."""
    styles = _Styles()
    s = packet.subject
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=17 * mm,
        rightMargin=17 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=f"Evidence: {s.model} v{s.version} to {s.target}",
        author="Signoff",
        subject=f"Evidence packet {s.id}",
    )
    story: list[Flowable] = [
        Paragraph(
            _text(f"Evidence packet: {s.model} version {s.version} → {s.target}"), styles.title
        ),
        Paragraph(
            _text(
                f"{'Break-glass move' if s.kind == 'break_glass' else 'Request'} {s.id}"
                f"; generated {_when(packet.generated_timestamp)} for "
                f"{packet.generated_by} by Signoff"
            ),
            styles.body,
        ),
        Spacer(1, 4 * mm),
        _summary(styles, packet),
        *_sections(styles, packet),
    ]
    doc.build(story)
    return buffer.getvalue()
