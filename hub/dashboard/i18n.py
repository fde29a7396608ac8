"""The dashboard's words in Vietnamese (the default) and English.

Catalogues are `locale/<lang>.yaml`, flat maps of key to text, with the same keys in every
language (a unit test holds them to it): the core's here, and each connector's in its own
package (`add_words`, for its flow page). A missing key shows the key itself rather than fail.
The language is the `hub_lang` cookie, set by `?lang=` on any page.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from hub import yamlfile

LANGUAGES = ("vi", "en")
DEFAULT = "vi"
COOKIE = "hub_lang"


_packages: list[str] = ["hub.dashboard"]


def add_words(package: str) -> None:
    """Words from `<package>/locale/<lang>.yaml` too (a connector's)."""
    if package not in _packages:
        _packages.append(package)
        catalogue.cache_clear()


def read(package: str, lang: str) -> dict[str, str]:
    text = (resources.files(package) / "locale" / f"{lang}.yaml").read_text("utf-8")
    data = yamlfile.load(text, f"{package}/locale/{lang}.yaml").data or {}
    return {str(k): str(v) for k, v in data.items()}


@cache
def catalogue(lang: str) -> dict[str, str]:
    words: dict[str, str] = {}
    for package in _packages:
        words.update(read(package, lang))
    return words


def pick(requested: str | None, cookie: str | None) -> str:
    for lang in (requested, cookie):
        if lang in LANGUAGES:
            return str(lang)
    return DEFAULT


def translate(lang: str, key: str, **values: object) -> str:
    text = catalogue(lang).get(key) or catalogue(DEFAULT).get(key) or key
    return text.format(**values) if values else text
