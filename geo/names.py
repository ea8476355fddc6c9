"""Venue names for matching: normalisation, the branch a name gives, and name similarity.

Used by :mod:`geo.leads` to pair observed net cafés with licence-register entries.  A name is
reduced to its distinctive part (the 字号 of a Chinese business name): full-width characters
folded, branch names and business words (网吧, 网咖, 网络会所, 有限公司 …) removed and, for a
registered company name, the administrative-division prefix (西安市, 雁塔区 …) dropped.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd
from rapidfuzz import fuzz

__all__ = ["TRADE_WORDS", "branch_of", "name_score", "normalise_name"]

#: business words removed by :func:`normalise_name`, longest first
TRADE_WORDS = (
    "互联网上网服务营业场所",
    "有限责任公司",
    "上网服务",
    "有限公司",
    "分公司",
    "网络会所",
    "电竞网咖",
    "电竞馆",
    "网吧",
    "网咖",
    "网城",
    "网络",
    "电竞",
    "会所",
)
_OPEN, _CLOSE = r"(\[{【〔〖<《「『", r")\]}】〕〗>》」』"
_BRACKETS = re.compile(rf"[{_OPEN}][^{_CLOSE}]*[{_CLOSE}]")
#: brackets holding a branch (东湖店, 钟楼分店) rather than a brand (【网鱼】)
_BRANCH_BRACKETS = re.compile(rf"[{_OPEN}][^{_CLOSE}]*店\s*[{_CLOSE}]")
_BRANCH_SUFFIX = re.compile(r"(?:分店|店)$")
_HAN = r"[\u4e00-\u9fff]"
#: the administrative division a registered company name starts with (企业名称 = 行政区划 + 字号 + …)
_DIVISION_PREFIX = re.compile(
    rf"^(?:{_HAN}{{2,3}}?(?:省|自治区))?(?:{_HAN}{{2,4}}?市)?(?:{_HAN}{{1,3}}?[区县])?"
)


def _fold(name: object) -> str:
    """NFKC (full-width → half-width), lower case; '' for missing values."""
    if name is None or (isinstance(name, float) and np.isnan(name)) or name is pd.NA:
        return ""
    return unicodedata.normalize("NFKC", str(name)).lower().strip()


def _strip_marks(text: str) -> str:
    """Drop spaces, punctuation and symbols."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PSZ" and not ch.isspace())


def _core(text: str) -> str:
    text = _BRANCH_SUFFIX.sub("", _strip_marks(text))
    for word in TRADE_WORDS:
        text = text.replace(word, "")
    return text


def _drop_division(core: str, folded: str) -> str:
    """``core`` without a leading 西安市 / 雁塔区 … when ``folded`` is a company name (and a name is left)."""
    if "公司" not in folded:
        return core
    rest = _DIVISION_PREFIX.sub("", core, count=1)
    return rest or core


def normalise_name(name: str) -> str:
    """A venue name reduced to its distinctive part, for matching.

    Full-width characters become half-width (NFKC) and Latin letters lower case; branch names
    in brackets (full- or half-width), a trailing 分店/店, business words (网吧, 网咖,
    网络会所, 电竞馆, 网络, 有限公司 …), spaces and punctuation are removed, and so is the
    administrative division that starts a company name (西安市星海网络有限公司 → 星海).  When
    nothing is left, brackets that do not hold a branch are kept (a brand written as
    【网鱼】网咖); when still nothing is left (a name that is only "网吧" or "电竞网咖(钟楼店)"),
    the folded name without its branch and punctuation is returned.

    Examples
    --------
    >>> normalise_name("星海网咖（东湖店）")
    '星海'
    >>> normalise_name("ABC 网络会所 有限公司")
    'abc'
    >>> normalise_name("西安市雁塔区星海网络有限公司")
    '星海'
    """
    folded = _fold(name)
    without_branch = _BRANCH_BRACKETS.sub("", folded)
    core = _core(_BRACKETS.sub("", folded)) or _core(without_branch)
    if core:
        return _drop_division(core, folded)
    return _BRANCH_SUFFIX.sub("", _strip_marks(without_branch)) or _strip_marks(folded)


def branch_of(name: str) -> str:
    """The branch a name gives (bracket content, or the words between a trade word and a final 店).

    '' when the name gives none.

    >>> branch_of("星海网咖（东湖店）"), branch_of("星海网咖东湖店"), branch_of("星海网咖")
    ('东湖', '东湖', '')
    """
    folded = _fold(name)
    inner = re.findall(r"[(\[【]([^)\]】]*)[)\]】]", folded)
    if inner:
        return _BRANCH_SUFFIX.sub("", _strip_marks(inner[-1]))
    text = _strip_marks(folded)
    ends = [text.rfind(w) + len(w) for w in TRADE_WORDS if w in text]
    tail = text[max(ends) :] if ends else ""
    return _BRANCH_SUFFIX.sub("", tail) if _BRANCH_SUFFIX.search(tail) else ""


def name_score(a: str, b: str) -> float:
    """Similarity (0–100) of two normalised names: rapidfuzz ratio, or 0.9 × partial ratio if higher.

    The partial term lets "星海" match "星海东湖" (a branch written into the name).
    """
    if not a or not b:
        return 0.0
    partial = 0.9 * fuzz.partial_ratio(a, b) if min(len(a), len(b)) >= 2 else 0.0
    return float(max(fuzz.ratio(a, b), partial))
