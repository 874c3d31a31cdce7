"""What each template sees, with made-up values: to preview a template, and to refuse one
that uses a variable its messages will not have."""

from typing import Any

_TICKET = {"number": 4213, "subject": "Invoice shows the wrong amount",
           "id": "3f1c2a9e-5b7d-4c1e-9a2f-6d8e0b1c2a3f", "priority": "normal"}  # fmt: skip
_REQUESTER = {"name": "Anna Petrova", "id": "c-1042"}
_BASE = {"sender": "Support", "ticket": _TICKET, "requester": _REQUESTER}

SAMPLES: dict[str, dict[str, Any]] = {
    "ticket_opened": _BASE,
    "agent_replied": _BASE | {"message": {"body": "We have refunded the second charge."}},
    "ticket_solved": _BASE | {"resolution": "Refunded"},
    "ticket_assigned": _BASE | {"assignment": {"assignee_id": "agent-7", "group_id": "billing",
                                               "by": "agent-2"}},
    "customer_replied": _BASE | {"message": {"body": "It is invoice 4417."}},
    "follower_added": _BASE,
    "sla_warning": _BASE | {"sla": {"metric": "first response", "percent": 75,
                                    "deadline": "2026-12-01 12:00 UTC"}},
    "sla_breached": _BASE | {"sla": {"metric": "first response", "percent": 100,
                                     "deadline": "2026-12-01 12:00 UTC"}},
    "survey_invitation": _BASE | {"survey": {
        "kind": "csat", "expires_at": "2026-12-08 12:00 UTC",
        "links": [(label, f"https://support.example/s/token?score={n}")
                  for n, label in enumerate(["Awful", "Bad", "OK", "Good", "Great"], 1)],
    }},
    "negative_feedback": _BASE | {"feedback": {
        "kind": "CSAT", "score": 1, "best": 5, "threshold": 2, "reason": "slow response",
        "ticket_number": 4213, "customer_id": "c-1042", "customer_name": "Anna Petrova",
        "reopened": True,
    }},
    # About a customer, not a ticket.
    "customer_at_risk": {"sender": "Support", "ticket": None, "requester": None, "risk": {
        "customer_id": "c-1042", "organisation_id": "org-7", "health": "35",
        "previous_health": "72", "threshold": "50",
        "reasons": [{"code": "sla_breaches", "impact": "-24",
                     "detail": "3 SLA breaches in the last 30 days"},
                    {"code": "low_csat", "impact": "-15",
                     "detail": "2 of 4 CSAT answers below 4 in the last 90 days"}],
    }},
}  # fmt: skip
"""Template name -> a context like the ones its messages are rendered with."""
