"""The check that a French surface has no English prose left: common English words, whole
words, case-insensitive. Used on the collector's pages, the TUI and the agent's PDFs; run
on the English surfaces it must find plenty, so it cannot pass by accident.

Words French shares ("To" is a téraoctet; lot, audit, machine, signature, page, total, options, exports, min,
Purge, Clear, Destroy in the NIST glosses, verdict, contact, date, version) are left out on
purpose. Hyphens and underscores keep data whole: "station-1a2b3c" is not the word "station"."""

from __future__ import annotations

import re

ENGLISH = set("""
the and of with for from in on by at no not yes none yet any all this these is are was has been since only
here every each download search check choose verify received certificate certificates drive drives disk disks
dashboard today successful success failed failures interrupted running wipe wipes wiping outcome category
method methods serial model manufacturer digest key report valid invalid content revoked revoke enrolled
station stations token create name status speed progress pass update last left time previous next export
sanitized capacity achieved categories physically needing recent collector file stored nothing
new login required refused found request right now shown expires admin one put stick sanitize drives
waiting planning verifying certifying passed protected skipped unknown ready reuse again destroy recycle
press enter close screen done remove marked delivered spooled size state health battery memory
issued started finished result read errors written tool used details taken device number
mismatches verification recommended attached rendering proof signed person performing
""".split())


def english_words(text: str) -> set[str]:
    # A file name (certificate.json) or a dotted code is data, not prose.
    return {w for w in re.findall(r"[\w'-]+(?:\.[\w'-]+)*", text.lower()) if w in ENGLISH}


