"""Messages from templates: per tenant and language, autoescaped HTML, never sent broken.

A template is a subject, a text and an HTML part. The built-in ones are files under
`templates/<language>/`: `<name>.subject.txt`, `<name>.txt`, `<name>.html`; a tenant's
admins may replace any of them per language (`PUT /v1/templates/{name}/{language}`).
Variables are strict: a missing one is an error, not an empty string. A message is rendered
from the first of: the tenant's template in the person's language, the built-in one in
that language, the tenant's in the default language, the built-in in the default language;
each fall-back is logged. If none renders, nothing is sent (the delivery fails for good,
with the reason). Everything runs sandboxed, as templates admins write must.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import PackageLoader, StrictUndefined, Template, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from helpdesk_runtime.logging import get_logger

log = get_logger(__name__)

PARTS = ("subject", "text", "html")
BUILT_IN_LANGUAGES = ("en", "ru")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    language: str
    source: str = "built-in"
    """"built-in" or "tenant": whose template it was rendered from."""


@dataclass(frozen=True)
class Custom:
    """A tenant's own template for one name and language."""

    subject: str
    text: str
    html: str


Customs = Mapping[tuple[str, str], Custom]
"""A tenant's templates by (name, language)."""


class TemplateBrokenError(Exception):
    """No template could render the message: nothing is sent."""


MAX_RANGE = 1000
"""What `range` in a template may count to: enough for any message, not for a loop that
keeps the process busy (templates are written by tenants' admins)."""
MAX_REPEAT = 10_000
"""The longest string or list `*` may make in a template."""


class _Sandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise SecurityError("** is not allowed in templates")
        if isinstance(left, str | list | tuple) or isinstance(right, str | list | tuple):
            count = right if isinstance(right, int) else left
            if isinstance(count, int) and count > MAX_REPEAT:
                raise SecurityError(f"repeating more than {MAX_REPEAT} times is not allowed")
        return super().call_binop(context, operator, left, right)


def _range(*args: int) -> range:
    made = range(*args)
    if len(made) > MAX_RANGE:
        raise SecurityError(f"range over {MAX_RANGE} items is not allowed in templates")
    return made


def _environment(autoescape: bool) -> SandboxedEnvironment:
    env = _Sandbox(
        loader=PackageLoader("notifications", "templates"),
        autoescape=autoescape,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        # Built-in templates ship with the code: not checked for changes on every render
        # (a stat per template and message, seen in the drain's profile).
        auto_reload=False,
    )
    env.globals["range"] = _range
    return env


def _file(name: str, part: str) -> str:
    return {"subject": f"{name}.subject.txt", "text": f"{name}.txt", "html": f"{name}.html"}[part]


class Templates:
    def __init__(self, default_language: str = "en") -> None:
        self.default_language = default_language
        self._text = _environment(autoescape=False)
        self._html = _environment(autoescape=True)
        self._compiled: dict[tuple[str, str], Template] = {}

    def render(
        self, name: str, language: str | None, context: dict[str, Any],
        custom: Customs | None = None,
    ) -> Rendered:  # fmt: skip
        custom = custom or {}
        wanted = (language or self.default_language).split("-")[0].lower()
        tried: list[str] = []
        for lang in dict.fromkeys((wanted, self.default_language)):
            for source in ("tenant", "built-in"):
                own = custom.get((name, lang)) if source == "tenant" else None
                if source == "tenant" and own is None:
                    continue
                try:
                    return self._render(name, lang, context, own)
                except Exception as exc:  # TemplateError, or what a template's code raised
                    tried.append(f"{source} {lang}: {type(exc).__name__}: {exc}")
                    log.warning("template failed; falling back", template=name, language=lang,
                                source=source, error=tried[-1])  # fmt: skip
        raise TemplateBrokenError(f"template {name!r} does not render: " + "; ".join(tried))

    def builtin(self, name: str, language: str) -> Custom | None:
        """The built-in template's source, if there is one in this language."""
        try:
            parts = [self._text.loader.get_source(self._text, f"{language}/{_file(name, p)}")[0]  # type: ignore[union-attr]
                     for p in PARTS]  # fmt: skip
        except TemplateError:
            return None
        return Custom(*parts)

    def preview(self, custom: Custom, context: dict[str, Any], language: str) -> Rendered:
        """A draft rendered with `context`; TemplateError if it does not compile or render."""
        return self._render("draft", language, context, custom)

    def _render(
        self, name: str, lang: str, context: dict[str, Any], own: Custom | None
    ) -> Rendered:
        if own is None:
            subject = self._text.get_template(f"{lang}/{_file(name, 'subject')}").render(context)
            text = self._text.get_template(f"{lang}/{_file(name, 'text')}").render(context)
            html = self._html.get_template(f"{lang}/{_file(name, 'html')}").render(context)
            source = "built-in"
        else:
            subject = self._compile(own.subject, html=False).render(context)
            text = self._compile(own.text, html=False).render(context)
            html = self._compile(own.html, html=True).render(context)
            source = "tenant"
        # One line, whatever the template's layout.
        return Rendered(" ".join(subject.split()), text, html, lang, source)

    def _compile(self, source: str, *, html: bool) -> Template:
        key = ("html" if html else "text", source)
        if key not in self._compiled:
            if len(self._compiled) > 10_000:  # bounded: tenants' templates are few
                self._compiled.clear()
            self._compiled[key] = (self._html if html else self._text).from_string(source)
        return self._compiled[key]
