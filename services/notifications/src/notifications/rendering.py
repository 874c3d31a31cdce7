"""Messages from templates: per language, autoescaped HTML, never sent half-rendered.

A template is three files under `templates/<language>/`: `<name>.subject.txt`,
`<name>.txt` and `<name>.html`. Variables are strict: a missing one is an error, not an
empty string, and the message falls back to the default language (logged), whose
template must render; otherwise the delivery fails for good rather than send a broken
message. Templates run sandboxed, as those admins will edit must.
"""

from dataclasses import dataclass
from typing import Any

from jinja2 import PackageLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from helpdesk_runtime.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    language: str


class TemplateBrokenError(Exception):
    """No language could render the template: nothing is sent."""


def _environment(autoescape: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=PackageLoader("notifications", "templates"),
        autoescape=autoescape,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


class Templates:
    def __init__(self, default_language: str = "en") -> None:
        self.default_language = default_language
        self._text = _environment(autoescape=False)
        self._html = _environment(autoescape=True)

    def render(self, name: str, language: str | None, context: dict[str, Any]) -> Rendered:
        wanted = (language or self.default_language).split("-")[0].lower()
        tried: list[str] = []
        for lang in dict.fromkeys((wanted, self.default_language)):
            try:
                return self._render(name, lang, context)
            except TemplateError as exc:
                tried.append(f"{lang}: {type(exc).__name__}: {exc}")
                log.warning("template failed; falling back to the default language",
                            template=name, language=lang, error=tried[-1])  # fmt: skip
        raise TemplateBrokenError(f"template {name!r} does not render: " + "; ".join(tried))

    def _render(self, name: str, lang: str, context: dict[str, Any]) -> Rendered:
        subject = self._text.get_template(f"{lang}/{name}.subject.txt").render(context)
        return Rendered(
            subject=" ".join(subject.split()),  # one line, whatever the template's layout
            text=self._text.get_template(f"{lang}/{name}.txt").render(context),
            html=self._html.get_template(f"{lang}/{name}.html").render(context),
            language=lang,
        )
