# ruff: noqa: RUF001 (Russian words, and en dashes, are meant)
"""The survey page's words, per language: English and Russian. A language missing here falls
back to English; a key missing in a language falls back to the English text."""

from collections.abc import Mapping
from types import MappingProxyType

from helpdesk_contracts import SurveyKind

EN: Mapping[str, str] = MappingProxyType({
    "title": "How did we do?",
    "about": "About your request #{number}",
    "question.csat": "How satisfied are you with the support you received?",
    "question.nps": "How likely are you to recommend us to a friend or colleague?",
    "question.ces": "How easy was it to get your issue resolved?",
    "csat.1": "Very dissatisfied", "csat.2": "Dissatisfied", "csat.3": "Neither",
    "csat.4": "Satisfied", "csat.5": "Very satisfied",
    "binary.1": "Bad, I'm unsatisfied", "binary.5": "Good, I'm satisfied",
    "nps.low": "Not at all likely", "nps.high": "Extremely likely",
    "ces.1": "Very difficult", "ces.2": "Difficult", "ces.3": "Somewhat difficult",
    "ces.4": "Neither", "ces.5": "Somewhat easy", "ces.6": "Easy", "ces.7": "Very easy",
    "reason": "If something went wrong, what was it?",
    "reason.none": "Nothing went wrong",
    "reason.slow_response": "It took too long",
    "reason.not_resolved": "My issue was not resolved",
    "reason.unfriendly": "The agent was not helpful",
    "reason.had_to_repeat": "I had to repeat myself",
    "reason.product_issue": "The product itself is the problem",
    "reason.other": "Something else",
    "comment": "Anything else you would like to tell us? (optional)",
    "send": "Send",
    "previous": "You already answered on {date}. Sending again replaces that answer.",
    "thanks.title": "Thank you!",
    "thanks": "Your answer was recorded. You can change it from the same link until {date}.",
    "duplicate.title": "Already recorded",
    "duplicate": "This answer was already recorded. Thank you!",
    "invalid.title": "This link does not work",
    "invalid": "The survey link is not valid. Please use the link from our message as it is.",
    "expired.title": "This survey has closed",
    "expired": "The survey closed on {date}. Thank you for your interest.",
    "error.score": "Please choose an answer.",
    "error.reason": "Please choose a reason from the list.",
    "error.comment": "The comment is too long (at most {max} characters).",
    "limited.title": "Too many attempts",
    "limited": "Please wait a minute and try again.",
})  # fmt: skip

RU: Mapping[str, str] = MappingProxyType({
    "title": "Как мы справились?",
    "about": "О вашем обращении №{number}",
    "question.csat": "Насколько вы довольны полученной поддержкой?",
    "question.nps": "Насколько вероятно, что вы порекомендуете нас другу или коллеге?",
    "question.ces": "Насколько легко было решить ваш вопрос?",
    "csat.1": "Совсем не доволен", "csat.2": "Не доволен", "csat.3": "Ни то ни другое",
    "csat.4": "Доволен", "csat.5": "Очень доволен",
    "binary.1": "Плохо, я не доволен", "binary.5": "Хорошо, я доволен",
    "nps.low": "Совсем маловероятно", "nps.high": "Очень вероятно",
    "ces.1": "Очень трудно", "ces.2": "Трудно", "ces.3": "Скорее трудно",
    "ces.4": "Ни то ни другое", "ces.5": "Скорее легко", "ces.6": "Легко", "ces.7": "Очень легко",
    "reason": "Если что-то пошло не так, что именно?",
    "reason.none": "Всё было хорошо",
    "reason.slow_response": "Слишком долго",
    "reason.not_resolved": "Вопрос не решён",
    "reason.unfriendly": "Сотрудник не помог",
    "reason.had_to_repeat": "Пришлось повторять одно и то же",
    "reason.product_issue": "Проблема в самом продукте",
    "reason.other": "Другое",
    "comment": "Хотите что-нибудь добавить? (необязательно)",
    "send": "Отправить",
    "previous": "Вы уже ответили {date}. Новый ответ заменит прежний.",
    "thanks.title": "Спасибо!",
    "thanks": "Ваш ответ сохранён. Изменить его можно по той же ссылке до {date}.",
    "duplicate.title": "Ответ уже сохранён",
    "duplicate": "Этот ответ уже сохранён. Спасибо!",
    "invalid.title": "Ссылка не работает",
    "invalid": "Ссылка на опрос недействительна. Откройте ссылку из нашего письма целиком.",
    "expired.title": "Опрос закрыт",
    "expired": "Опрос закрылся {date}. Спасибо за интерес.",
    "error.score": "Пожалуйста, выберите ответ.",
    "error.reason": "Пожалуйста, выберите причину из списка.",
    "error.comment": "Комментарий слишком длинный (не больше {max} символов).",
    "limited.title": "Слишком много попыток",
    "limited": "Пожалуйста, подождите минуту и попробуйте снова.",
})  # fmt: skip

CATALOGUES: Mapping[str, Mapping[str, str]] = MappingProxyType({"en": EN, "ru": RU})


class Words:
    """The page's text in one language."""

    def __init__(self, language: str) -> None:
        self.language = language if language in CATALOGUES else "en"
        self._words = CATALOGUES[self.language]

    def __call__(self, key: str, **values: object) -> str:
        text = self._words.get(key) or EN.get(key) or key.rsplit(".", 1)[-1].replace("_", " ")
        return text.format(**values) if values else text

    def option(self, kind: SurveyKind, binary: bool, score: int, scale: tuple[int, ...]) -> str:
        """The label of one answer: its words where the scale has them, else the number."""
        if binary:
            return self(f"binary.{score}")
        if kind is SurveyKind.NPS:
            if score == scale[0]:
                return f"{score} – {self('nps.low')}"
            if score == scale[-1]:
                return f"{score} – {self('nps.high')}"
            return str(score)
        return f"{score} – {self(f'{kind.value}.{score}')}"


def language_of(preferred: str | None, accept_language: str | None, default: str) -> str:
    """The invitation's language, else the browser's first one we have, else the default."""
    if preferred and preferred[:2] in CATALOGUES:
        return preferred[:2]
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in CATALOGUES:
            return tag
    return default if default in CATALOGUES else "en"
