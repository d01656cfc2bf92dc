#!/usr/bin/env bash
# The README's first command. Until the live image lands, it audits this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >/dev/null
.venv/bin/ardoise disks
.venv/bin/ardoise audit
