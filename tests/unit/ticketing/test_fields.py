import re

import pytest
from pydantic import ValidationError

from ticketing.domain import FieldDefinition, FieldType, TicketError, check_fields

FIELDS = {
    d.key: d
    for d in (
        FieldDefinition(key="order_id", title="Order", type=FieldType.TEXT),
        FieldDefinition(key="refund", title="Refund", type=FieldType.NUMBER),
        FieldDefinition(key="vip", title="VIP", type=FieldType.CHECKBOX),
        FieldDefinition(key="due", title="Due", type=FieldType.DATE),
        FieldDefinition(key="plan", title="Plan", type=FieldType.DROPDOWN, options=("free", "pro")),
    )
}


def test_values_of_the_defined_types_pass_and_none_removes() -> None:
    check_fields(
        {"order_id": "A-1", "refund": 49.9, "vip": True, "due": "2026-12-31", "plan": "pro",
         "vip_removed": None} | {"vip": None},
        FIELDS | {"vip_removed": FIELDS["vip"]},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"colour": "red"}, "'colour' is not a custom field of this tenant"),
        ({"refund": "49"}, "'refund' must be a number"),
        ({"refund": True}, "'refund' must be a number"),
        ({"vip": "yes"}, "'vip' must be a checkbox"),
        ({"due": "31.12.2026"}, "'due' must be a date"),
        ({"plan": "gold"}, "'plan' must be one of ['free', 'pro']"),
    ],
)
def test_unknown_fields_and_wrong_types_are_refused(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(TicketError, match=re.escape(message)):
        check_fields(values, FIELDS)


def test_a_tenant_without_definitions_takes_no_custom_fields() -> None:
    with pytest.raises(TicketError, match="none are defined"):
        check_fields({"order_id": "A-1"}, {})


def test_only_dropdowns_have_options() -> None:
    with pytest.raises(ValidationError, match="only a dropdown"):
        FieldDefinition(key="plan", title="Plan", type=FieldType.DROPDOWN)
    with pytest.raises(ValidationError, match="only a dropdown"):
        FieldDefinition(key="x", title="X", type=FieldType.TEXT, options=("a",))
