"""XML records streamed through defusedxml, for the e-Gov law and JATS readers: declared encodings decoded,
memory bounded to about one record, every failure one `Unreadable`.
"""
from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from html.entities import html5
from typing import Any
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser, iterparse

from pipeline.charset import NOT_TEXT_CODECS, as_web_text, codec_for_label, jis_x0213_note, strict_errors
from pipeline.sources.base import RawDoc, SourceConfig, Unreadable
from pipeline.sources.io import (
    MAX_NESTING,
    MAX_OPEN_ELEMENTS,
    NODE_BYTES,
    READ_SIZE,
    DecodedStream,
    InputError,
    one_line,
    open_stream,
)

Rendered = tuple[str, dict[str, Any], str | None, str | None]  # text, meta, licence, url of one XML record


def local_name(tag: Any) -> str:
    """Tag without its '{namespace}' part (JATS mixes namespaced and plain elements)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def element_text(el: Any, skip: frozenset[str] | set[str] = frozenset()) -> str:
    """All text under `el` in document order, leaving out the subtrees whose local name is in `skip`."""
    parts: list[str] = [el.text or ""]

    def walk(node: Any) -> None:
        if local_name(node.tag) not in skip:
            parts.append(node.text or "")
            for child in node:
                walk(child)
        parts.append(node.tail or "")

    for child in el:
        walk(child)
    return "".join(parts)


_XML_ENCODING = re.compile(rb"^(?:\xef\xbb\xbf)?<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
# what expat decodes itself, by the name it knows it by (it refuses other spellings: utf8, UTF_8, latin-1)
EXPAT_ENCODINGS = {"utf-8": "UTF-8", "utf-16": "UTF-16", "ascii": "US-ASCII", "iso8859-1": "ISO-8859-1"}


# HTML's named character references (&nbsp; &mdash;...), which JATS and XHTML files use under a DOCTYPE naming
# an external DTD: expat leaves them to the parser then (without such a DOCTYPE they stay malformed XML), and
# the file was quarantined as "undefined entity". Each stands for one or two fixed characters: nothing expands.
NAMED_ENTITIES = {name[:-1]: text for name, text in html5.items() if name.endswith(";")}


def _xml_codec(name: str) -> codecs.CodecInfo:
    """Python's codec for an XML declaration's encoding, by the web's reading of the label (as for HTML,
    docs/extraction.md): Shift_JIS is cp932, whose NEC and IBM rows (① ㈱ Ⅳ) Python's shift_jis refuses, and
    names Python does not know may still be labels (windows-31j, x-euc-jp)."""
    try:
        own = codecs.lookup(name)
    except LookupError:
        own = None
    if own is not None and own.name in EXPAT_ENCODINGS:  # ISO-8859-1 is Latin-1 here, not the web's cp1252
        return own
    label = codec_for_label(name)  # a Python codec's name, or None (also for utf-7 and co.)
    if label is None:
        what = "text" if own is not None and own.name in NOT_TEXT_CODECS else "known"  # utf-7: lone surrogates
        raise InputError(f"XML declared in {name}, which is no {what} encoding")
    return codecs.lookup(label)


class Utf8Xml:
    """XML whose declaration names an encoding expat cannot decode (Shift_JIS, EUC-JP, ISO-2022-JP...), decoded
    incrementally by Python's codec and handed to the parser as UTF-8, the declaration rewritten to say so.
    Any other XML passes through unchanged.

    While `record_start` is set (the stream's decompressed bytes when a record element opened), a read that
    would take the record past `max_record_bytes` raises instead: the parser holds an open record whole, so
    a giant one would otherwise grow memory up to max_decompressed_bytes. `event_at` is where the parser
    last reported an element: expat rescans an unfinished token (a comment, an attribute, a text) on every
    feed, so a long one is fed in reads that double (a 64 MB comment in 64 KiB feeds took 22 s, 300 MB
    never ended), and one longer than `max_record_bytes` stops the file.
    """

    def __init__(self, stream: DecodedStream, max_record_bytes: int) -> None:
        self.stream, self.max_record_bytes = stream, max_record_bytes
        self.record_start: int | None = None
        self.event_at = 0
        self.head = self._read(READ_SIZE)  # the declaration is in the first bytes; reads may come in small pieces
        match = _XML_ENCODING.match(self.head)
        self.encoding = match.group(1).decode() if match else ""
        codec = _xml_codec(self.encoding) if match else None
        self.codec = codec.name if codec else ""  # decoded as the HTML reader does: ① ㈱ 髙, cp932 folded
        expat = not codec or self.codec in EXPAT_ENCODINGS
        self.decoder = None if expat else codec.incrementaldecoder(strict_errors(self.codec))
        if codec:  # the declaration names what expat will read, as expat spells it
            start, end = match.span(1)
            self.head = self.head[:start] + EXPAT_ENCODINGS.get(codec.name, "UTF-8").encode() + self.head[end:]

    def read(self, n: int = -1) -> bytes:
        limit, quiet = self.max_record_bytes, self.stream.produced - self.event_at
        if self.record_start is not None and self.stream.produced - self.record_start > limit:
            raise InputError(f"a record over max_record_bytes={limit} bytes of XML; the rest of the file was not read")
        if quiet > limit:
            raise InputError(f"no XML element starts or ends within max_record_bytes={limit} bytes (a comment, "
                             f"attribute or text that long); the rest of the file was not read")
        size = max(READ_SIZE, min(quiet, limit // 4))
        while True:
            data, self.head = self.head or self._read(size), b""
            if not self.decoder:
                return data
            try:
                out = as_web_text(self.codec, self.decoder.decode(data, final=not data)).encode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"invalid {self.encoding} ({e.reason}) in the declared encoding of this XML"
                                 f"{jis_x0213_note(self.codec, e)}") from None
            if out or not data:
                return out

    def _read(self, size: int) -> bytes:
        parts, got = [], 0
        while got < size and (chunk := self.stream.read(size - got)):
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)


def iter_xml_records(stream: DecodedStream, record_tag: str, max_record_bytes: int,
                     context_tags: frozenset[str] = frozenset()) -> Iterator[tuple[Any | None, str, dict[str, str]]]:
    """Stream `(element, element_path, context)` for each outermost `record_tag` element, parsed by defusedxml.

    Finished records and finished elements outside records are detached, so memory stays at about one
    record (at most `max_record_bytes` of its XML, and a read: see Utf8Xml; at most one element per NODE_BYTES
    of it, and MAX_OPEN_ELEMENTS open ones: past either the file stops). `context` holds the text of
    `context_tags` elements seen outside records so far (e.g. the 法令API wrapper's LawId). `element` is None
    for a record with an element deeper than MAX_NESTING: the readers' renderers recurse. Parser errors
    (defusedxml refusals, ParseError) propagate to the caller; an encoding expat cannot look up or switch to is
    an InputError.
    """
    source = Utf8Xml(stream, max_record_bytes)
    try:
        yield from _xml_records(source, record_tag, context_tags)
    except LookupError as e:  # e.g. a UTF-16 file declaring an unknown encoding: Utf8Xml reads only bytes
        raise InputError(f"XML in an unknown encoding ({one_line(e)})") from None
    except DefusedXmlException:  # a ValueError too: the caller names the refusal
        raise
    except ValueError as e:  # a UTF-16 file declaring Shift_JIS: pyexpat switches only to single-byte codecs
        raise InputError(f"XML declared in an encoding the parser cannot switch to from its bytes' own "
                         f"({one_line(e)})") from None


def _xml_records(source: Utf8Xml, record_tag: str,
                 context_tags: frozenset[str]) -> Iterator[tuple[Any | None, str, dict[str, str]]]:
    stack: list[Any] = []
    in_record = 0  # how many open record elements enclose the current position
    too_deep = False  # the current record has an element deeper than MAX_NESTING
    count = elements = 0  # records, and elements in the current record
    max_elements = source.max_record_bytes // NODE_BYTES
    context: dict[str, tuple[str, int]] = {}  # tag -> (text, depth of the element that holds it)
    parser = DefusedXMLParser()  # entity declarations and external entities stay refused
    parser.entity.update(NAMED_ENTITIES)
    for event, el in iterparse(source, events=("start", "end"), parser=parser):
        source.event_at = source.stream.produced
        name = local_name(el.tag)
        if event == "start":
            stack.append(el)
            if name == record_tag and not in_record:
                source.record_start, elements = source.stream.produced, 0
            in_record += name == record_tag
            if in_record and len(stack) > MAX_NESTING:
                too_deep = True
            if len(stack) > MAX_OPEN_ELEMENTS:
                raise InputError(f"XML elements nested over {MAX_OPEN_ELEMENTS} deep; the rest of the file was not read")
            elements += bool(in_record)
            if elements > max_elements:
                raise InputError(f"a record of over {max_elements} XML elements (one per {NODE_BYTES} bytes of "
                                 "max_record_bytes); the rest of the file was not read")
            continue
        stack.pop()
        if name == record_tag:
            in_record -= 1
            if in_record:
                continue
            count += 1
            source.record_start = None
            path = "".join("/" + local_name(a.tag) for a in stack) + f"/{record_tag}[{count}]"
            yield None if too_deep else el, path, {tag: text for tag, (text, _) in context.items()}
            too_deep = False
        elif in_record:
            continue
        elif name in context_tags:
            context[name] = ("".join(el.itertext()).strip(), len(stack))
        else:  # a context value holds inside the element that holds it (a law's LawId went on to the next law)
            context = {tag: held for tag, held in context.items() if held[1] <= len(stack)}
        el.clear()
        if stack:
            stack[-1].remove(el)


def read_xml_records(path: str, source: SourceConfig, record_tag: str,
                     render: Callable[[Any, dict[str, str]], Rendered],
                     context_tags: frozenset[str] = frozenset()) -> Iterator[RawDoc | Unreadable]:
    """The shared loop of the XML readers: one RawDoc per record element, Unreadable on any parse failure.

    `render(element, context) -> (text, meta, licence or None, url or None)`. Records finished before a failure are
    kept; the failure (defusedxml refusal, malformed XML, corrupt compression) ends the file with one
    Unreadable whose source_id names the first record that was not read.
    """
    try:
        stream = open_stream(path, source.max_decompressed_bytes)
    except InputError as e:
        yield Unreadable(path, str(e))
        return
    done = 0
    with stream:
        try:
            for element, element_path, context in iter_xml_records(stream, record_tag, source.max_record_bytes,
                                                                   context_tags):
                done += 1
                source_id = f"{path}#{element_path}"
                if element is None:
                    yield Unreadable(source_id, f"<{record_tag}> nested deeper than {MAX_NESTING} levels of elements")
                    continue
                text, meta, lic, url = render(element, context)
                if len(text.encode("utf-8", "replace")) > source.max_record_bytes:
                    yield Unreadable(source_id, f"text of <{record_tag}> exceeds max_record_bytes={source.max_record_bytes}")
                else:
                    yield RawDoc(source_id=source_id, text=text, url=url, license=lic, meta=meta)
        except (DefusedXmlException, ParseError, InputError) as e:
            where = f"{path}#/{record_tag}[{done + 1}]" if done else path
            kind = ("refused by defusedxml" if isinstance(e, DefusedXmlException)
                    else "malformed XML" if isinstance(e, ParseError) else "")
            yield Unreadable(where, f"{kind}: {one_line(str(e))}" if kind else str(e))
            return
    if not done:  # well-formed, but not the format the source names
        yield Unreadable(path, f"no <{record_tag}> element in this XML (is it in the source's format?)")
