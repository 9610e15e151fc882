"""Text analysis shared by documents and queries: the terms the full-text index and the embedders see.

CamelCase/snake_case splitting, lower-casing, ASCII folding, plural stripping, a small finance
abbreviation/synonym table (``px`` -> ``price``, ``fx`` -> ``foreign exchange``...) and frequency
words (``1d`` -> ``daily``). The full-text index then only splits the analysed words into 3-grams.

Example:
    >>> analyze("Monthly CPI prints")
    ['monthly', 'cpi', 'print', 'consumer', 'price', 'index', 'inflation']
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["analyze", "class_words", "frequency_words"]

_STOPWORDS = frozenset(
    "a an and are as at be by for from has have how i in into is it its of on or per that the their "
    "this to was what where which with all any does do me my show find give get want need".split()
)

# Finance abbreviations and plain-English synonyms: a term (after plural stripping) adds these words.
# "term: words" entries separated by "|" or newlines.
_SYNONYM_TABLE = """
px: price | fx: foreign exchange currency | vol: volatility | vola: volatility | ccy: currency
ret: return | mkt: market | mcap: market capitalization | cap: capitalization | eps: earnings per share
pe: price earnings | pb: price book | yld: yield | oi: open interest | iv: implied volatility
rv: realized volatility | ohlc: open high low close bar | ohlcv: open high low close volume bar
qty: quantity | amt: amount | bp: basis point | bps: basis point | yoy: year over year
qoq: quarter over quarter | mom: momentum | gdp: gross domestic product
cpi: consumer price index inflation | ppi: producer price index | pmi: purchasing managers index
nfp: nonfarm payrolls | esg: environmental social governance | btc: bitcoin crypto
eth: ethereum ether crypto | crypto: cryptocurrency | perp: perpetual futures | fut: futures
fwd: forward | pt: point | pts: point | opt: option | eod: end of day daily close
ttm: trailing twelve months | ytm: yield to maturity | oas: option adjusted spread
cds: credit default swap | ig: investment grade | hy: high yield | tca: transaction cost analysis
pnl: profit and loss | nav: net asset value | aum: assets under management | adv: average daily volume
vwap: volume weighted average price | twap: time weighted average price
nbbo: national best bid offer quote | bbo: best bid offer quote | ipo: initial public offering
etf: exchange traded fund | fcf: free cash flow | capex: capital expenditures | ev: enterprise value
roe: return on equity | dte: days to expiry | atm: at the money | rr: risk reversal | bf: butterfly
gics: sector industry classification | sofr: secured overnight financing rate
ois: overnight index swap | tips: inflation protected | l2: level 2 order book depth
lob: limit order book | mna: mergers acquisitions | snp: standard poors sp500 | ma: moving average | div: dividend
divs: dividend | fin: financial | econ: economic | govt: government | corp: corporate
ir: interest rate | irs: interest rate swap | ust: treasury | tsy: treasury | stock: equity
equity: stock | share: equity | position: holding | holding: position | candle: bar ohlc
candlestick: bar ohlc | bar: candle | forecast: estimate | estimate: forecast | jobless: unemployment
job: employment payrolls | payroll: employment | cost: fee | fee: cost | spending: spend
tweet: twitter | coin: crypto | bitcoin: crypto btc | ether: crypto eth | fund: etf | inflation: cpi
earning: eps | close: closing | closing: close | realised: realized | optimiser: optimizer
optimisation: optimization | capitalisation: capitalization | annualised: annualized
normalised: normalized | standardised: standardized
"""
_SYNONYMS: dict[str, str] = {
    k.strip(): v.strip()
    for entry in _SYNONYM_TABLE.replace("\n", "|").split("|")
    if entry.strip()
    for k, v in [entry.split(":", 1)]
}

# Ampersand abbreviations that would otherwise split into single letters.
_PHRASES = {"m&a": " mna ", "s&p": " snp ", "p&l": " pnl "}
_PHRASE_RE = re.compile("|".join(re.escape(p) for p in _PHRASES))

_FREQ_UNITS = {
    "s": "second intraday",
    "sec": "second intraday",
    "m": "minute intraday",
    "min": "minute intraday",
    "h": "hourly hour intraday",
    "d": "daily day",
    "w": "weekly week",
    "mo": "monthly month",
    "q": "quarterly quarter",
    "y": "annual yearly year",
}
_FREQ_RE = re.compile(r"^(\d+)(s|sec|min|m|h|d|w|mo|q|y)$")
_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD_RE = re.compile(r"[a-z0-9]+")
_ALNUM_SPLIT_RE = re.compile(r"[a-z]+|[0-9]+")


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()


def _stem(word: str) -> str:
    """Plural stripping only ("prices" -> "price", "currencies" -> "currency")."""
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("xes", "x"), ("ches", "ch"), ("shes", "sh")):
        if word.endswith(suffix):
            return word[: -len(suffix)] + repl
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def frequency_words(frequency_id: str | None) -> str:
    """Words for a frequency id: ``"1d"`` -> ``"daily day"``, ``"5m"`` -> ``"5 minute intraday"``."""
    if not frequency_id:
        return ""
    match = _FREQ_RE.match(frequency_id.strip().lower())
    if not match:
        return ""
    n, unit = match.groups()
    words = _FREQ_UNITS[unit]
    return words if n == "1" else f"{n} {words}"


def analyze(text: str) -> list[str]:
    """Normalise ``text`` into index terms (used for both documents and queries).

    >>> analyze("DailyFX px_close 1d")
    ['daily', 'fx', 'px', 'close', '1d', 'foreign', 'exchange', 'currency', 'price', 'closing', 'day']
    """
    terms: list[str] = []
    extra: list[str] = []
    folded = _PHRASE_RE.sub(lambda m: _PHRASES[m.group()], _fold(_CAMEL_RE.sub(" ", text)))
    for raw in _WORD_RE.findall(folded):
        if raw in _STOPWORDS:
            continue
        word = _stem(raw)
        terms.append(word)
        parts = _ALNUM_SPLIT_RE.findall(raw)
        if len(parts) > 1:
            freq = frequency_words(raw)
            if freq:
                extra.extend(freq.split())
            extra.extend(p for p in parts if len(p) > 1)
        syn = _SYNONYMS.get(word) or _SYNONYMS.get(raw)
        if syn:
            extra.extend(syn.split())
    seen = set(terms)
    for word in extra:
        if word not in seen and word not in _STOPWORDS:
            seen.add(word)
            terms.append(word)
    return terms


def class_words(source_class: str | None) -> str:
    """The words of a class path's last name.

    >>> class_words("research.signals.MomentumSignal")
    'Momentum Signal'
    """
    name = (source_class or "").rsplit(".", 1)[-1]
    return _CAMEL_RE.sub(" ", name)
