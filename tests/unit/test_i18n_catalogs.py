"""The catalogs are complete, consistent with the code, and compiled.

The .mo files are committed (CI's ``pip install -e`` and build_image.sh's copy of agent/
both ship them as they are), so these tests hold them to their .po source, and the .po
files to the strings the code and templates actually use."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from agent import i18n

REPO = Path(__file__).resolve().parents[2]
CATALOGS = sorted(i18n.LOCALE_DIR.glob(f"*/LC_MESSAGES/{i18n.DOMAIN}.po"))
BRACES = re.compile(r"\{(\w*)[!:}]")


def _key(message) -> tuple:
    ident = message.id[0] if isinstance(message.id, tuple) else message.id
    return (message.context, ident)


def _strings(message) -> list[str]:
    return list(message.string) if isinstance(message.string, tuple) else [message.string]


def _ids(message) -> list[str]:
    return list(message.id) if isinstance(message.id, tuple) else [message.id]


def _load(po: Path):
    with po.open("rb") as f:
        return read_po(f)


def test_french_is_shipped():
    assert "fr" in i18n.available_languages()
    assert [p.parts[-3] for p in CATALOGS] == [c for c in i18n.available_languages() if c != i18n.SOURCE_LANGUAGE]


def _code_messages() -> set[tuple]:
    """Every message the code and the templates mark, extracted as scripts/i18n.sh does."""
    method_map, options_map = [], {}
    for line in (REPO / "babel.cfg").read_text().splitlines():
        m = re.match(r"\[(\w+):\s*(.+)\]", line.strip())
        if m:
            method_map.append((m.group(2), m.group(1)))
    keywords = {**DEFAULT_KEYWORDS, "N_": None, "T_": None, "pgettext": ((1, "c"), 2), "NC_": ((1, "c"), 2)}
    found = set()
    for _file, _line, message, _comments, context in extract_from_dir(str(REPO), method_map, options_map,
                                                                        keywords=keywords):
        ident = message[0] if isinstance(message, tuple) else message
        found.add((context, ident))
    return found


@pytest.fixture(scope="module")
def code_messages() -> set[tuple]:
    return _code_messages()


def test_the_extraction_finds_the_strings_people_read(code_messages):
    # A broken babel.cfg would extract nothing and let every other check pass.
    assert (None, "Ardoise collector") in code_messages  # a template
    assert (None, "wiping destroys everything on {devices}: add --yes to confirm") in code_messages  # the CLI
    assert ("NIST category", "Clear") in code_messages  # agent.i18n
    assert len(code_messages) > 200


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: p.parts[-3])
def test_every_message_of_the_code_is_translated_and_none_is_fuzzy(po, code_messages):
    catalog = _load(po)
    translated = {_key(m) for m in catalog if m.id and all(_strings(m)) and not m.fuzzy}
    missing = sorted(code_messages - translated, key=str)
    assert not missing, f"{po}: untranslated (scripts/i18n.sh extract && update, then translate): {missing[:10]}"
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not fuzzy, f"{po}: fuzzy: {fuzzy[:10]}"
    assert not catalog.fuzzy, f"{po}: the header is marked fuzzy"


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: p.parts[-3])
def test_translations_keep_every_placeholder(po):
    catalog = _load(po)
    problems = [(m.id, str(e)) for m in catalog if m.id for e in m.check(catalog)]  # %-format, plural forms
    for m in catalog:
        if not m.id:
            continue
        wanted = set(BRACES.findall(_ids(m)[0]))
        for s in _strings(m):
            if set(BRACES.findall(s)) != wanted:
                problems.append((m.id, f"placeholders {sorted(wanted)} became {sorted(set(BRACES.findall(s)))}"))
    assert not problems, problems


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: p.parts[-3])
def test_the_committed_mo_is_the_compiled_po(po):
    mo = po.with_suffix(".mo")
    assert mo.is_file(), f"{mo} is missing: scripts/i18n.sh compile"
    with mo.open("rb") as f:
        compiled = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
    expected = {}
    for m in _load(po):
        if not m.id:
            continue
        prefix = f"{m.context}\x04" if m.context else ""
        if isinstance(m.id, tuple):
            for i, s in enumerate(m.string):
                expected[(prefix + m.id[0], i)] = s
        else:
            expected[prefix + m.id] = m.string
    compiled = {k: v for k, v in compiled.items() if k != ""}
    assert compiled == expected, f"{mo} is stale: scripts/i18n.sh compile"
