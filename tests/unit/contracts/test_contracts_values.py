"""Payload and value rules: tags, custom fields, text limits, scores and status changes."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from helpdesk_contracts import (
    SCORE_RANGES,
    Actor,
    ActorKind,
    FeedbackReceived,
    Organisation,
    Priority,
    Requester,
    SurveyKind,
    TicketStatus,
    TicketStatusChanged,
    TicketSubmitted,
)

pytestmark = pytest.mark.unit

AGENT = Actor(kind=ActorKind.AGENT, id="agent_017")


def submitted(**fields: Any) -> TicketSubmitted:
    defaults: dict[str, Any] = {
        "source": "webshop",
        "external_id": "ORD-1",
        "subject": "Broken glasses",
        "description": "",
        "requester": {"customer_id": "cus_1"},
    }
    return TicketSubmitted.model_validate(defaults | fields)


class TestTags:
    def test_are_stripped_lower_cased_and_unique_in_first_seen_order(self) -> None:
        tags = submitted(tags=[" Delivery ", "damaged", "DELIVERY", "vip"]).tags
        assert tags == ("delivery", "damaged", "vip")

    @pytest.mark.parametrize("tag", ["", "   ", "x" * 51])
    def test_must_be_1_to_50_characters(self, tag: str) -> None:
        with pytest.raises(ValidationError, match=r"tags\.0"):
            submitted(tags=[tag])

    def test_at_most_50(self) -> None:
        assert len(submitted(tags=[f"t{i}" for i in range(50)]).tags) == 50
        with pytest.raises(ValidationError, match="at most 50 items"):
            submitted(tags=[f"t{i}" for i in range(51)])


class TestCustomFields:
    def test_keep_scalar_types(self) -> None:
        fields = {"order_id": "ORD-1", "items": 3, "total": 249.9, "express": True, "coupon": None}
        custom = submitted(custom_fields=fields).custom_fields
        assert custom == fields
        assert type(custom["items"]) is int
        assert type(custom["express"]) is bool

    @pytest.mark.parametrize(
        "fields",
        [
            {"bad key": 1},
            {"nested": {"a": 1}},
            {"list": [1]},
            {"long": "x" * 4097},
            {f"f{i}": i for i in range(101)},
        ],
    )
    def test_refuse_bad_keys_values_and_sizes(self, fields: dict[str, Any]) -> None:
        with pytest.raises(ValidationError, match="custom_fields"):
            submitted(custom_fields=fields)


class TestText:
    def test_subject_is_stripped_and_limited(self) -> None:
        assert submitted(subject="  Broken  ").subject == "Broken"
        for subject in ("   ", "x" * 251):
            with pytest.raises(ValidationError, match="subject"):
                submitted(subject=subject)

    def test_description_is_limited_to_64_ki_characters(self) -> None:
        assert len(submitted(description="x" * 65_536).description) == 65_536
        with pytest.raises(ValidationError, match="description"):
            submitted(description="x" * 65_537)

    @pytest.mark.parametrize("external_id", ["", " ORD-1", "ORD-1\n", "x" * 201])
    def test_ids_are_one_line_without_surrounding_space(self, external_id: str) -> None:
        with pytest.raises(ValidationError, match="external_id"):
            submitted(external_id=external_id)

    def test_intake_defaults(self) -> None:
        ticket = submitted()
        assert (ticket.priority, ticket.channel, ticket.type) == (
            Priority.NORMAL,
            "api",
            "question",
        )
        assert (ticket.tags, ticket.custom_fields, ticket.organisation) == ((), {}, None)


class TestRequester:
    def test_accepts_plausible_contact_details(self) -> None:
        requester = Requester(
            customer_id="cus_1",
            email="maria.jensen@example.com",
            phone="+45 20 12 34 56",
            language="pt-BR",
        )
        assert requester.language == "pt-BR"

    @pytest.mark.parametrize(
        ("field", "value"),
        [("email", "maria"), ("email", "a@b"), ("phone", "call me"), ("language", "Danish")],
    )
    def test_refuses_implausible_contact_details(self, field: str, value: str) -> None:
        with pytest.raises(ValidationError, match=field):
            Requester.model_validate({"customer_id": "cus_1", field: value})

    def test_organisation_tier_defaults_to_standard(self) -> None:
        assert Organisation(id="org_1").tier == "standard"


class TestFeedbackScores:
    @pytest.mark.parametrize("survey", list(SurveyKind))
    def test_accept_exactly_their_range(self, survey: SurveyKind) -> None:
        low, high = SCORE_RANGES[survey]
        for score in range(-1, 12):
            fields = {
                "feedback_id": uuid4(),
                "customer_id": "cus_1",
                "survey": survey,
                "score": score,
                "source": "survey-mailer",
            }
            if low <= score <= high:
                assert FeedbackReceived.model_validate(fields).score == score
            else:
                with pytest.raises(ValidationError, match="score"):
                    FeedbackReceived.model_validate(fields)

    def test_ranges(self) -> None:
        assert dict(SCORE_RANGES) == {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}


class TestStatusChanged:
    def test_moves_between_working_statuses(self) -> None:
        event = TicketStatusChanged(
            previous=TicketStatus.OPEN, status=TicketStatus.PENDING, changed_by=AGENT
        )
        assert event.status == "pending"

    @pytest.mark.parametrize(
        ("previous", "status"),
        [("open", "solved"), ("solved", "open"), ("pending", "closed")],
    )
    def test_leaves_solving_reopening_and_closing_to_their_own_events(
        self, previous: str, status: str
    ) -> None:
        with pytest.raises(ValidationError, match="TicketSolved, TicketReopened and TicketClosed"):
            TicketStatusChanged.model_validate(
                {"previous": previous, "status": status, "changed_by": AGENT}
            )
