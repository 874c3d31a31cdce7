"""SETTINGS.md lists every setting of every service as the code defines it."""

from support.settings_doc import PAGE, SERVICES, page


def test_the_settings_page_is_made_from_the_code() -> None:
    assert PAGE.read_text(encoding="utf-8") == page(), "the page is stale: run `make settings`"


def test_every_service_and_every_setting_is_on_the_page() -> None:
    text = page()
    for service, settings in SERVICES:
        assert f"\n## {service}\n" in text
        for name in settings.model_fields:
            assert f"| `{name.upper()}` |" in text
