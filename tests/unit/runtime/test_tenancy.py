"""The tenant scope that the pool hands to each connection it checks out."""

import contextvars
import re
from pathlib import Path

from helpdesk_runtime import tenancy

LEAKPROOF_SQL = Path(__file__).parents[3] / "deploy" / "postgres" / "leakproof.sql"


def test_a_scope_is_an_array_literal_of_quoted_ids() -> None:
    with tenancy.scoped_to(["globex", "acme", "acme"]):
        assert tenancy.current_scope() == '{"acme","globex"}'
    with tenancy.scoped_to(['a"b', "c\\d", "e,f"]):
        assert tenancy.current_scope() == '{"a\\"b","c\\\\d","e,f"}'
    with tenancy.scoped_to([]):
        assert tenancy.current_scope() == "{}"


def test_nothing_is_in_scope_until_code_says_what() -> None:
    assert contextvars.Context().run(tenancy.current_scope) == tenancy.NONE  # a fresh process

    def request() -> str:
        tenancy.narrow_to("acme")
        return tenancy.current_scope()

    with tenancy.scoped_to([]):
        assert contextvars.copy_context().run(request) == '{"acme"}'
        with tenancy.all_tenants():
            assert tenancy.current_scope() == tenancy.ALL
        assert tenancy.current_scope() == tenancy.NONE  # each scope ends with its block


def test_the_superuser_script_marks_exactly_the_functions_the_services_check() -> None:
    marked = re.findall(r"ALTER FUNCTION (\w+\(.*?\)) LEAKPROOF;", LEAKPROOF_SQL.read_text())
    assert [m.replace(" ", "") for m in marked] == list(tenancy.INDEXED_FUNCTIONS)
