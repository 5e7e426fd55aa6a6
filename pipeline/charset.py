"""Decide the character encoding of a fetched page and decode it, recording why.

Order of evidence: byte-order mark, HTTP `Content-Type` charset, `<meta charset>` /
`<meta http-equiv content="...; charset=...">` / XML declaration in the first `SNIFF_BYTES`, then
byte-level detection. A declaration is only a claim: it is overridden when strict decoding fails,
when the bytes are valid multi-byte UTF-8 (legacy text is almost never valid UTF-8 by accident; under a
UTF-16/32 label only without that encoding's NULs), when 7-bit bytes carry ISO-2022-JP escapes, or
when a non-Japanese label hides Japanese bytes (the decoding has no kana while cp932/EUC-JP gives
kana-rich text), and, by what the text of each reading looks like (charset_checks.py), when Shift_JIS hides
Chinese or Korean (half-width katakana soup) or a Western label hides kana-free EUC-JP. Detection: ASCII, strict
UTF-8, ISO-2022-JP escapes, then cp932 vs EUC-JP by kana ratio (our own rule: fast and exact for Japanese), then
charset-normalizer for other languages, windows-1252 preferred to the other Latin code pages it ties with.

Label mapping (WHATWG-compatible supersets): Shift_JIS -> cp932 (Windows-31J: NEC/IBM extensions
that real "Shift_JIS" pages use); EUC-JP -> euc_jp (JIS X 0208 + JIS X 0212 three-byte sequences, the
repertoire of the WHATWG decoder; the JIS X 0208 cells it lacks, NEC row 13 ①② and IBM rows 89-92 髙 﨑,
read from cp932), falling back to euc_jis_2004 only when that fails (JIS X 0213 characters); Shift_JIS likewise
falls back to shift_jis_2004; ISO-2022-JP -> iso2022_jp_ext (adds half-width katakana), fallback iso2022_jp_2004.
cp932 output is folded to the JIS X 0208 mapping that euc_jp/shift_jis use (U+FF5E -> U+301C WAVE DASH etc.), so
one text in Shift_JIS and in EUC-JP decodes to the same string (dedup) and NFKC does not turn 〜 into an ASCII
tilde; shift_jis_2004 output is mapped back to ASCII as euc_jis_2004 reads it (Python's codec reads 0x5C/0x7E as
¥/‾ and 1-1-32/1-2-18 as \\ and ~).
"""
from __future__ import annotations

import codecs
import re
import threading

from pipeline import charset_checks
from pipeline.charset_checks import SCORE_CHARS

SNIFF_BYTES = 8192  # where <meta> / <?xml encoding> are looked for (WHATWG prescans 1024; real heads are longer)
MIN_KANA_RATIO = 0.10  # of non-ASCII characters, for a decoding to count as Japanese
_JA_DOUBLE_BYTE = frozenset({"cp932", "euc_jp"})
_HALFWIDTH_KANA = re.compile("[\uff61-\uff9f]")
_BEYOND_2_BYTES = re.compile("[\u0800-\U0010ffff]")  # characters UTF-8 writes in 3 or 4 bytes
HALFWIDTH_SOUP = 0.5  # of non-ASCII characters: a kana-poor cp932 decoding this full of ｱｶｻ may be Chinese or Korean
_WESTERN = frozenset({"cp1252", "iso8859-15"})  # what ISO-8859-1, US-ASCII, windows-1252, ISO-8859-15 labels give
_OTHER_CJK = frozenset({"gb18030", "big5hkscs", "cp949"})
MAX_BAD_SEQUENCES = 8  # a decoding with this few invalid sequences (and 20x more valid non-ASCII) is kept, bad bytes dropped

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_HTTP_CHARSET = re.compile(r"charset\s*=\s*[\"']?\s*([A-Za-z0-9_:.\-]+)", re.I)
_META = re.compile(rb"<meta\b[^>]{0,512}?charset\s*=\s*[\"']?\s*([A-Za-z0-9_:.\-]+)", re.I)
_XML_DECL = re.compile(rb"<\?xml\b[^>]{0,200}?encoding\s*=\s*[\"']\s*([A-Za-z0-9_.\-]+)", re.I)
_ISO2022_ESC = re.compile(rb"\x1b(?:\$[@B]|\$\(D|\(J|\(I)")
_KANA = (0x3041, 0x30FF)  # hiragana and katakana blocks

_JA = {"cp932": ("cp932", "shift_jis_2004"), "euc_jp": ("euc_jp", "euc_jis_2004"),
       "iso2022_jp_ext": ("iso2022_jp_ext", "iso2022_jp_2004")}
# label (lower case) -> codec; anything else goes through codecs.lookup
_ALIASES = {
    **dict.fromkeys(("shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "ms932", "windows-31j", "cp932",
                     "csshiftjis", "x-ms-cp932", "shiftjis", "csWindows31J".lower(),
                     "sjis-win", "windows-932", "cp943c", "ibm-943"), "cp932"),  # PHP's, Windows', IBM's names
    **dict.fromkeys(("euc-jp", "eucjp", "euc_jp", "x-euc-jp", "x-euc", "ujis", "cseucpkdfmtjapanese",
                     "eucjp-win", "eucjp-ms", "euc-jp-ms", "cp51932"), "euc_jp"),
    **dict.fromkeys(("iso-2022-jp", "iso2022jp", "iso2022_jp", "csiso2022jp", "jis", "iso-2022-jp-2"), "iso2022_jp_ext"),
    **dict.fromkeys(("gb2312", "gbk", "x-gbk", "chinese", "csgb2312", "gb_2312-80", "euc-cn", "gb18030"), "gb18030"),
    **dict.fromkeys(("big5", "big5-hkscs", "cn-big5", "x-x-big5", "csbig5"), "big5hkscs"),
    **dict.fromkeys(("euc-kr", "ks_c_5601-1987", "ksc5601", "windows-949", "cseuckr", "korean"), "cp949"),
    **dict.fromkeys(("iso-8859-1", "latin1", "l1", "us-ascii", "ascii", "windows-1252", "cp1252", "iso8859-1"), "cp1252"),
    **dict.fromkeys(("iso-8859-9", "latin5", "windows-1254"), "cp1254"),
    **dict.fromkeys(("tis-620", "iso-8859-11", "windows-874"), "cp874"),
    **dict.fromkeys(("utf-8", "utf8", "unicode-1-1-utf-8", "x-unicode20utf8"), "utf-8"),
}
# Python codecs that are no page's or file's character encoding: they decode to lone surrogates (UTF-7, the
# escape codecs, which Parquet cannot store), fail on any input (idna, punycode, undefined) or transform bytes to
# bytes (base64, zlib, rot13...: `_is_text_encoding` False, an AttributeError or TypeError deep inside a reader
# when used as one); never used. Names are `codecs.lookup(label).name`.
NOT_TEXT_CODECS = frozenset({"utf-7", "idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined",
                             "base64", "bz2", "hex", "quopri", "rot-13", "uu", "zlib"})
# charset-normalizer's names for the JIS X 0213 supersets -> our chains, which read JIS X 0208 text as browsers do
# (euc_jis_2004 read the NEC-selected IBM rows of EUC-JP as other kanji: 髙 -> 郄) and fall back to them
_DETECTED_AS = {"euc_jis_2004": "euc_jp", "euc_jisx0213": "euc_jp", "shift_jis_2004": "cp932", "shift_jisx0213": "cp932"}
# Python's Shift_JIS-2004 decoders read 0x5C/0x7E as ¥/‾ and JIS X 0213 1-1-32/1-2-18 as \ and ~, where euc_jis_2004
# (and cp932, browsers) read ASCII as ASCII and those cells as ＼ and ～: `10:00~18:00` became `10:00‾18:00`
_SJIS_X0213_AS_EUC = str.maketrans({"\\": "\uff3c", "~": "\uff5e", "\u00a5": "\\", "\u203e": "~"})
# cp932 -> the JIS X 0208 mapping of euc_jp / shift_jis (see module docstring)
_CP932_FOLD = (("\uff5e", "\u301c"), ("\u2225", "\u2016"), ("\uff0d", "\u2212"),
               ("\uffe0", "\u00a2"), ("\uffe1", "\u00a3"), ("\uffe2", "\u00ac"))


class CharsetError(ValueError):
    """The bytes decode under no plausible charset; the pipeline quarantines the page with this message."""


def decode_html(body: bytes, http_content_type: str | None) -> tuple[str, dict]:
    """Text of `body` and the decision for meta: charset, charset_source, declared, overridden."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            text, used = _strict(body[len(bom):], codec)
            if text is None:
                raise CharsetError(f"bytes after the {codec} byte-order mark are not valid {codec}")
            return text, _decision(used, "bom", None, False)

    declared, source = _declared(body, http_content_type)
    codec = _codec_for(declared, source) if declared else None
    if codec in ("utf-16", "utf-32"):
        codec = _byte_order(body, codec)
    if codec is not None:
        if (found := _contradicted(body, codec)) is not None:
            return found[0], _decision(found[1], "detected", declared, True)
        text, used = _strict(body, codec)
        if text is not None:
            if used != "utf-8" and _kana_ratio(text) < MIN_KANA_RATIO and (found := _misread(body, text, used)):
                return found[0], _decision(found[1], "detected", declared, True)
            return text, _decision(used, source, declared, False)
        lenient = _lenient(body, codec)
        # a Japanese codec that needs dropping bytes must still give Japanese-looking text (else it is mojibake);
        # any other must not hide kana-rich Japanese (Shift_JIS labelled ISO-8859-1, with a few bytes cp1252 lacks)
        plausible = lenient is not None and (_kana_ratio(lenient[0]) >= MIN_KANA_RATIO if codec in _JA
                                             else _japanese(body) is None)
        found = None if plausible else _detect(body)
        if found is not None:
            return found[0], _decision(found[1], "detected", declared, True)
        if lenient is not None:
            decision = _decision(lenient[2], source, declared, False)
            decision["invalid_sequences"] = lenient[1]
            return lenient[0], decision
        raise CharsetError(f"bytes are invalid in the declared charset {declared!r} and in every detected one")

    found = _detect(body)
    if found is None:
        raise CharsetError("no charset declared and no detected charset decodes the bytes")
    return found[0], _decision(found[1], "detected", declared, False)


def codec_for_label(label: str) -> str | None:
    """Python codec for a charset label (WHATWG-style supersets), None when unknown."""
    key = label.strip().strip("\"'").lower()
    if key in _ALIASES:
        return _ALIASES[key]
    try:
        codec = codecs.lookup(key).name
    except LookupError:
        return None
    return None if codec in NOT_TEXT_CODECS else codec


def _codec_for(label: str, source: str) -> str | None:
    codec = codec_for_label(label)
    if codec is not None and codec.startswith("utf-16") and source != "http":
        return "utf-8"  # an ASCII-readable <meta> cannot really be UTF-16 (WHATWG does the same)
    return codec


def _byte_order(body: bytes, codec: str) -> str:
    """`utf-16` / `utf-32` with no BOM: the byte order its ASCII's NULs show (Python reads these labels as
    little-endian, so a UTF-16BE page sent as `charset=utf-16` decoded as Han garbage: 㸀㰀洀攀琀)."""
    head, size = body[:SNIFF_BYTES], 2 if codec == "utf-16" else 4
    first, last = head[0::size].count(0), head[size - 1::size].count(0)
    return codec if first == last else f"{codec}-{'be' if first > last else 'le'}"


def _declared(body: bytes, http_content_type: str | None) -> tuple[str | None, str]:
    """The first label of HTTP, <meta> / XML declaration; an unknown HTTP label does not hide the page's own (as in
    WHATWG), and is the one recorded when the page has none."""
    unknown = None
    if http_content_type:
        m = _HTTP_CHARSET.search(http_content_type)
        if m and codec_for_label(m.group(1)) is not None:
            return m.group(1).lower(), "http"
        unknown = m.group(1).lower() if m else None
    head = body[:SNIFF_BYTES]
    meta, xml = _META.search(head), _XML_DECL.search(head)
    if meta and (not xml or meta.start() < xml.start()):
        return meta.group(1).decode("ascii").lower(), "meta"
    if xml:
        return xml.group(1).decode("ascii").lower(), "xml_decl"
    return (unknown, "http") if unknown else (None, "detected")


def _decision(codec: str, source: str, declared: str | None, overridden: bool) -> dict:
    return {"charset": codec, "charset_source": source, "declared": declared, "overridden": overridden}


def _chain(codec: str) -> tuple[str, ...]:
    return _JA.get(codec, (codec,))


def _decode(body: bytes, codec: str, errors: str = "strict") -> str:
    if errors == "strict":
        errors = strict_errors(codec)
    elif codec == "euc_jp" and errors == "replace":
        errors = EUC_JP_WINDOWS_LENIENT
    elif codec == "iso2022_jp_ext":
        errors = ISO2022_JP_WINDOWS_LENIENT
    return as_web_text(codec, body.decode(codec, errors))


def strict_errors(codec: str) -> str:
    """The error handler that makes strict decoding with a Python codec read what browsers read: the JIS X 0208 rows
    Python's euc_jp and ISO-2022-JP codecs lack (NEC row 13 ① ㈱ №, IBM rows 89-92 髙 﨑), as cp932 has them."""
    return _STRICT_ERRORS.get(codec, "strict")


def as_web_text(codec: str, text: str) -> str:
    """Text decoded by a Python codec as the web reads it: cp932 folded to JIS X 0208 (module docstring), Python's
    Shift_JIS-2004 0x5C/0x7E (¥ ‾) back to ASCII and its JIS X 0213 cells 1-1-32/1-2-18 to ＼ ～, as euc_jis_2004."""
    if codec == "cp932":
        return fold_cp932(text)
    return text.translate(_SJIS_X0213_AS_EUC) if codec in ("shift_jis_2004", "shift_jisx0213") else text


def jis_x0213_note(codec: str, err: UnicodeDecodeError) -> str:
    """'; ...' naming the JIS X 0213 character (or escape sequence) a strict Shift_JIS, EUC-JP or ISO-2022-JP decoding
    failed on and the label that reads it, for a quarantine reason; '' when the bytes are not one."""
    labels = {"cp932": ("Shift_JIS", "Shift_JIS-2004"), "euc_jp": ("EUC-JP", "EUC-JIS-2004"),
              "iso2022_jp_ext": ("ISO-2022-JP", "ISO-2022-JP-2004")}
    if codec not in labels:
        return ""
    data, found = err.object[err.start: err.start + 4], ""
    if data in (b"\x1b$(O", b"\x1b$(Q", b"\x1b$(P"):  # ISO-2022-JP-2004's planes 1 and 2
        found = "ESC " + " ".join(data[1:].decode())
    for size in (2, 3) if not found else ():
        try:
            char = data[:size].decode(_JA[codec][1])
        except UnicodeDecodeError:
            continue
        if not char.isascii() and len(char) <= 2:  # か゚ is two code points
            found = f"{data[:size].hex()} ({char})"
            break
    return f"; {found} is JIS X 0213, which {labels[codec][0]} lacks (declare {labels[codec][1]})" if found else ""


def _euc_pair_as_cp932(err: UnicodeDecodeError) -> tuple[str, int]:
    """A two-byte EUC-JP sequence Python's euc_jp refuses, read from the same JIS X 0208 row and cell of cp932,
    as the WHATWG decoder does: NEC row 13 (① ㈱) and the NEC-selected IBM rows 89–92 (髙 﨑; euc_jis_2004,
    the fallback, gives other characters there: 郄 粼). Anything else stays an error."""
    pair = err.object[err.start: err.start + 2]
    lead, trail = pair if len(pair) == 2 and err.end - err.start <= 2 else (0, 0)  # a lone lead byte at the end
    if 0xA1 <= lead <= 0xFE and 0xA1 <= trail <= 0xFE and (char := _jis_cell_as_cp932(lead - 0x80, trail - 0x80)):
        return char, err.start + 2
    raise err


def _jis_cell_as_cp932(row: int, cell: int) -> str | None:
    """The character cp932 has at JIS X 0208 row and cell (0x21..0x7E each), folded; None where it has none."""
    s1 = (row + 1) // 2 + (0x70 if row <= 0x5E else 0xB0)
    s2 = cell + (0x7E if row % 2 == 0 else 0x1F if cell < 0x60 else 0x20)
    try:
        return fold_cp932(bytes((s1, s2)).decode("cp932"))
    except UnicodeDecodeError:
        return None


class _Replaced(threading.local):
    """U+FFFDs the lenient handlers below gave in the decoding under way: past MAX_BAD_SEQUENCES `_lenient` refuses
    the decoding anyway, so the handler stops it there (a Python call per bad byte of a page in another charset made
    page_to_text 40% slower on the shared WARC)."""
    count = 0


_REPLACED = _Replaced()


def _replacement(err: UnicodeDecodeError) -> None:
    _REPLACED.count += 1
    if _REPLACED.count > MAX_BAD_SEQUENCES:
        raise err


def _euc_pair_or_replace(err: UnicodeDecodeError) -> tuple[str, int]:
    """Lenient EUC-JP: the cells browsers read from cp932 as above, else U+FFFD for the whole sequence, as the
    WHATWG decoder consumes it (a lead byte and the non-ASCII bytes after it). Python's euc_jp consumed the lead
    byte alone, so the next character was read from the trail byte on: every later pair misaligned until an ASCII
    byte (髙島屋の日本 -> 眦膕阿瞭本, with one stray byte elsewhere on the page)."""
    try:
        return _euc_pair_as_cp932(err)
    except UnicodeDecodeError:
        pass
    _replacement(err)
    data, start = err.object, err.start
    size = 1
    if data[start] in (0x8E, 0x8F) or 0xA1 <= data[start] <= 0xFE:
        size = 2 if start + 1 < len(data) and data[start + 1] >= 0x80 else 1
        if data[start] == 0x8F and size == 2 and 0xA1 <= data[start + 1] <= 0xFE:  # JIS X 0212: three bytes
            size = 3 if start + 2 < len(data) and data[start + 2] >= 0x80 else 2
    return "\ufffd", start + size


def _jis_pair_as_cp932(err: UnicodeDecodeError) -> tuple[str, int]:
    """ISO-2022-JP: a JIS X 0208 pair that Python's codec refuses, read from cp932 as in EUC-JP above (the WHATWG
    decoder uses the same index): one ① made strict decoding fail, and a page with no label was then read as
    ASCII, escape sequences and all ($B5~ET...). A two-byte error comes from a double-byte set: JIS X 0208 unless
    the last escape sequence in the 256 bytes before it designates JIS X 0212 (bounded: a run of ① after one
    escape sequence must not make every error scan back to it)."""
    data, start = err.object, err.start
    shift = data.rfind(b"\x1b", max(start - 256, 0), start)
    pair = data[start: start + 2]
    if err.end == start + 2 and (shift < 0 or data[shift: shift + 4] != b"\x1b$(D") and min(pair) >= 0x21 \
            and max(pair) <= 0x7E and (char := _jis_cell_as_cp932(*pair)):
        return char, err.end
    raise err


def _jis_pair_or_replace(err: UnicodeDecodeError) -> tuple[str, int]:
    try:
        return _jis_pair_as_cp932(err)
    except UnicodeDecodeError:
        _replacement(err)
        return codecs.replace_errors(err)


EUC_JP_WINDOWS = "jcorpus-euc-jp-windows"
EUC_JP_WINDOWS_LENIENT = "jcorpus-euc-jp-windows-lenient"
ISO2022_JP_WINDOWS = "jcorpus-iso2022-jp-windows"
ISO2022_JP_WINDOWS_LENIENT = "jcorpus-iso2022-jp-windows-lenient"
codecs.register_error(EUC_JP_WINDOWS, _euc_pair_as_cp932)
codecs.register_error(EUC_JP_WINDOWS_LENIENT, _euc_pair_or_replace)
codecs.register_error(ISO2022_JP_WINDOWS, _jis_pair_as_cp932)
codecs.register_error(ISO2022_JP_WINDOWS_LENIENT, _jis_pair_or_replace)
_STRICT_ERRORS = {"euc_jp": EUC_JP_WINDOWS, "iso2022_jp_ext": ISO2022_JP_WINDOWS}


def fold_cp932(text: str) -> str:
    """cp932's decoding of JIS X 0208 characters as euc_jp / shift_jis give them (module docstring)."""
    for variant, jis in _CP932_FOLD:  # str.replace per character beats str.translate (a Python-level table)
        if variant in text:
            text = text.replace(variant, jis)
    return text


def _strict(body: bytes, codec: str) -> tuple[str | None, str]:
    """Strict decoding with the codec's fallbacks; a character cut off at the very end (crawlers
    truncate payloads at a byte limit) is dropped rather than failing the page. Shift_JIS-2004 as a fallback must
    give Japanese-looking text: Big5 bytes are valid Shift_JIS-2004 (half-width katakana and kanji soup)."""
    for candidate in _chain(codec):
        text = None
        try:
            text = _decode(body, candidate)
        except UnicodeDecodeError as err:
            if err.start >= len(body) - 3 and err.start > 0:
                try:
                    text = _decode(body[: err.start], candidate)
                except UnicodeDecodeError:
                    pass
        except (LookupError, UnicodeError):  # not a text codec, or one failing with a plain UnicodeError
            break
        if text is not None and (candidate == codec or candidate != "shift_jis_2004"
                                 or _kana_ratio(text) >= MIN_KANA_RATIO):
            return text, candidate
    return None, codec


def _lenient(body: bytes, codec: str) -> tuple[str, int, str] | None:
    """Decoding that drops a handful of invalid sequences (a cut last character, one stray byte): (text, number of
    sequences dropped, codec), with the codec of the chain that drops fewest (a Shift_JIS-2004 page with one stray
    byte lost its JIS X 0213 characters to cp932, or had them read from their trail bytes on as ﾙ).

    Accepted only when the bad sequences are rare in absolute and relative terms and the valid
    non-ASCII characters outnumber them 20 to 1, so a wrong charset (errors everywhere) never passes.
    """
    best: tuple[str, int, str] | None = None
    for candidate in _chain(codec):
        _REPLACED.count = 0
        try:
            text = _decode(body, candidate, errors="replace")
        except UnicodeDecodeError:  # stopped past MAX_BAD_SEQUENCES by a lenient handler
            continue
        except (LookupError, UnicodeError):
            break
        bad = text.count("\ufffd") - (body.count(b"\xef\xbf\xbd") if candidate == "utf-8" else 0)
        if best is None or bad < best[1]:
            best = (text, bad, candidate)
    if best is None:
        return None
    text, bad, used = best
    if bad <= 0 or bad > MAX_BAD_SEQUENCES:
        return None
    sample = text[:SCORE_CHARS]
    if len(sample) - len(sample.encode("ascii", "ignore")) - bad < 20 * bad:
        return None
    return text.replace("\ufffd", ""), bad, used


def _contradicted(body: bytes, codec: str) -> tuple[str, str] | None:
    """(text, codec) when the bytes prove the label wrong: valid multi-byte UTF-8 under another label (a UTF-16/32
    one too, unless the bytes have that encoding's NULs), or ISO-2022-JP escapes in 7-bit bytes."""
    if codec.startswith("iso2022_jp"):
        return None
    wide = codec.startswith("utf-") and _has_wide_nuls(body)  # UTF-16 markup, or UTF-32 anything
    if not codec.startswith("utf-8") and not wide and (text := _multibyte_utf8(body)) is not None:
        # only 2-byte sequences, which the pairs of a Japanese double-byte charset also form (~930 common kanji in
        # EUC-JP: 年 発 法 律...), and the label reads the bytes as such pairs (not as the half-width katakana
        # UTF-8's é becomes in cp932): the label stands
        if codec not in _JA_DOUBLE_BYTE or _BEYOND_2_BYTES.search(text) or not _reads_as_pairs(body, codec):
            return text, "utf-8"
    if codec.startswith(("utf-16", "utf-32")) and not wide:  # no NULs: these bytes cannot be that encoding
        return _iso2022(body) or _detect(body)
    return _iso2022(body)


def _reads_as_pairs(body: bytes, codec: str) -> bool:
    text = _strict(body, codec)[0]
    return text is not None and not _HALFWIDTH_KANA.search(text)


def _has_wide_nuls(body: bytes) -> bool:
    """NULs in at least a tenth of the even or of the odd bytes of the head: UTF-16/32 ASCII, never UTF-8 HTML."""
    head = body[:SNIFF_BYTES]
    return max(head[0::2].count(0), head[1::2].count(0)) * 20 >= len(head)


def _iso2022(body: bytes) -> tuple[str, str] | None:
    """(text, codec) for 7-bit bytes with ISO-2022-JP escape sequences that decode as such, else None."""
    if not body.isascii() or not _ISO2022_ESC.search(body):
        return None
    text, used = _strict(body, "iso2022_jp_ext")
    if text is None and (lenient := _lenient(body, "iso2022_jp_ext")) is not None:  # not ASCII, escapes and all
        text, used = lenient[0], lenient[2]
    return (text, used) if text is not None else None


def _multibyte_utf8(body: bytes) -> str | None:
    """The text of bytes that are valid UTF-8 with at least one multi-byte character, else None."""
    if body.isascii():
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _kana_ratio(text: str) -> float:
    """Kana (hiragana and katakana blocks) among the non-ASCII characters."""
    return charset_checks.non_ascii_share(text, *_KANA)


def _japanese(body: bytes) -> tuple[str, str] | None:
    """Best strict cp932 / EUC-JP decoding with a Japanese-looking kana ratio, else None."""
    best: tuple[float, str, str] | None = None
    for codec in ("cp932", "euc_jp"):
        text, used = _strict(body, codec)
        if text is None:
            lenient = _lenient(body, codec)
            if lenient is None:
                continue
            text, used = lenient[0], lenient[2]
        ratio = _kana_ratio(text)
        if ratio >= MIN_KANA_RATIO and (best is None or ratio > best[0]):
            best = (ratio, text, used)
    return (best[1], best[2]) if best else None


def _misread(body: bytes, text: str, used: str) -> tuple[str, str] | None:
    """A better reading of bytes that decode strictly but kana-poor under their label: Japanese labelled otherwise
    (EUC-JP as Shift_JIS, Shift_JIS as iso-8859-1), Chinese or Korean labelled Shift_JIS, kana-free EUC-JP labelled
    iso-8859-1. None: the label stands."""
    ja = _japanese(body)
    if ja is not None:
        return ja if ja[1] != used else None
    if used in ("cp932", "shift_jis_2004") and charset_checks.halfwidth_share(text) >= HALFWIDTH_SOUP:
        return _other_cjk(body, text)
    if used in _WESTERN:
        return _kanji_only_euc(body)
    return None


def _other_cjk(body: bytes, text: str) -> tuple[str, str] | None:
    """(text, codec) when bytes whose cp932 reading `text` is mostly half-width katakana read better as Chinese or
    Korean: the reading has no well-placed voicing marks, and one of charset-normalizer's readings (in its order) in
    GB18030, Big5 or EUC-KR is strict and made of its charset's common letters (charset_checks.common_letters). A page
    written in half-width katakana stays Shift_JIS (its ﾞ ﾟ fit; read as Chinese it gives rare hanzi)."""
    if charset_checks.voicing_fits(text):
        return None
    import charset_normalizer

    for match in charset_normalizer.from_bytes(body):
        codec = codec_for_label(match.encoding or "")
        if codec in _OTHER_CJK:
            cjk, used = _strict(body, codec)
            if cjk is not None and charset_checks.common_letters(cjk, codec):
                return cjk, used
    return None


def _kanji_only_euc(body: bytes) -> tuple[str, str] | None:
    """(text, codec) for kana-free EUC-JP (kanji headings, lists of names) under a Western label, which the kana test
    cannot see: the bytes decode strictly as EUC-JP (every non-ASCII byte in a pair: Western text has lone accented
    letters) to mostly common kanji (charset_checks.common_kanji)."""
    euc, used = _strict(body, "euc_jp")
    return (euc, used) if euc is not None and charset_checks.common_kanji(euc) else None


def _detect(body: bytes) -> tuple[str, str] | None:
    """(text, codec) from the bytes alone, or None."""
    if body.isascii():
        return _iso2022(body) or (body.decode("ascii"), "ascii")
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    lenient = _lenient(body, "utf-8")
    if lenient is not None:
        return lenient[0], "utf-8"
    ja = _japanese(body)
    if ja is not None:
        return ja
    return _normalizer(body)


def _normalizer(body: bytes) -> tuple[str, str] | None:
    import charset_normalizer  # imported late: only non-Japanese legacy pages get here

    best = charset_normalizer.from_bytes(body).best()
    if best is None or best.encoding is None:
        return None
    codec = codec_for_label(best.encoding) or best.encoding
    if codec != "cp1252" and charset_checks.prefer_cp1252(body, best):
        return body.decode("cp1252"), "cp1252"
    text, used = _strict(body, _DETECTED_AS.get(codec, codec))
    if text is None and codec in _DETECTED_AS:  # e.g. a kana-poor Shift_JIS-2004 page
        text, used = _strict(body, codec)
    if text is None:
        text, used = str(best), best.encoding
    return text, used
