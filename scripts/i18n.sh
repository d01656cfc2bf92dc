#!/usr/bin/env bash
# The gettext catalogs (docs/i18n.md), with Babel:
#   scripts/i18n.sh extract        strings of the code and templates -> agent/locale/ardoise.pot
#   scripts/i18n.sh update         merge the .pot into every agent/locale/<lang>/LC_MESSAGES/ardoise.po
#   scripts/i18n.sh init LANG      start a catalog for a new language (es, de...)
#   scripts/i18n.sh compile        every .po -> .mo (committed; tests/unit/test_i18n_catalogs.py checks they match)
set -euo pipefail
cd "$(dirname "$0")/.."
# Babel comes with the project's Python dependencies (scripts/install-deps.sh makes .venv).
if [ -z "${PYBABEL:-}" ]; then
  if [ -x .venv/bin/pybabel ]; then PYBABEL=.venv/bin/pybabel
  elif command -v pybabel >/dev/null; then PYBABEL=pybabel
  else PYBABEL="python3 -m babel.messages.frontend"; fi
fi
LOCALE=agent/locale
POT=$LOCALE/ardoise.pot
mkdir -p "$LOCALE"
case "${1:-}" in
  extract)
    $PYBABEL extract -F babel.cfg -o "$POT" --project=Ardoise --copyright-holder="Ardoise contributors" \
      --msgid-bugs-address="" --no-location --sort-output -k N_ -k T_ -k pgettext:1c,2 -k NC_:1c,2 . ;;
  update)
    $PYBABEL update -i "$POT" -d "$LOCALE" -D ardoise --no-fuzzy-matching --ignore-obsolete ;;
  init)
    $PYBABEL init -i "$POT" -d "$LOCALE" -D ardoise -l "${2:?language code, e.g. es}" ;;
  compile)
    $PYBABEL compile -d "$LOCALE" -D ardoise --statistics ;;
  *)
    sed -n 2,7p "$0"; exit 2 ;;
esac
