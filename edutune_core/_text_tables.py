"""Decoding, separator detection and parsing of delimited text tables (CSV, TSV).

``edutune_core.data`` calls these helpers for every upload that is not an Excel
workbook. They return the table as raw strings, header row included, and leave
header detection and type conversion to the caller.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
from collections import Counter

import charset_normalizer
import pandas as pd

from edutune_core.i18n import DataError

logger = logging.getLogger(__name__)

SUPPORTED_ENCODINGS: list[str] = [
    "utf-8", "utf-8-sig", "gb18030", "big5", "utf-16", "cp1252", "latin-1", "shift_jis", "euc_kr",
]
SEPARATORS = (",", ";", "\t", "|")
_SINGLE_COLUMN_ORDER = ("\t", ",", ";", "|")
SEPARATOR_LABELS = {",": ",", ";": ";", "\t": "Tab", "|": "|"}

# Encodings tried first when a file is not UTF-8. They are the encodings that Excel uses
# for "CSV" on Simplified Chinese, Traditional Chinese, Western European, Japanese and
# Korean Windows.
_DETECTION_CANDIDATES = ["gb18030", "big5", "cp1252", "shift_jis", "euc_kr"]
# Double-byte code ranges of the frequent characters and punctuation of each candidate,
# which are the symbols and level-1 characters of GB2312, Big5 and JIS X 0208 (kana
# included), and KS X 1001 symbols and hangul. Mis-decoded bytes fall mostly outside.
_COMMON_CODES = {
    "gb18030": ("gb2312", ((0xA1A1, 0xA9FE), (0xB0A1, 0xD7F9))),
    "big5": ("big5", ((0xA140, 0xA3BF), (0xA440, 0xC67E))),
    "shift_jis": ("shift_jis", ((0x8140, 0x84BE), (0x889F, 0x9872))),
    "euc_kr": ("euc_kr", ((0xA1A1, 0xACFE), (0xB0A1, 0xC8FE))),
}
# Supersets and variants that charset-normalizer may name outside the candidates.
_CODE_FAMILIES = {
    "gbk": "gb18030", "gb2312": "gb18030", "big5hkscs": "big5", "cp950": "big5", "cp932": "shift_jis",
    "cp949": "euc_kr",
}
_COMMON_WESTERN = set("àâäáãåæçéèêëíìîïñóòôöõøœúùûüýÿßÀÂÄÁÃÅÆÇÉÈÊËÍÌÎÏÑÓÒÔÖÕØŒÚÙÛÜÝŸ€‘’“”–—…•«»°·")
_SCORING_SAMPLE_CHARS = 64 * 1024
_DAMAGED_MIN_SHARE = 0.9
_CANDIDATE_MIN_SHARE = 0.5
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
_DETECTION_SAMPLE_BYTES = 1 << 20
_SNIFF_SAMPLE_CHARS = 64 * 1024
_SNIFF_MAX_RECORDS = 200


def decode_text(data: bytes, file_name: str, encoding: str | None) -> tuple[str, str]:
    """Decode ``data`` with the ``encoding`` override, or with the detected encoding.

    Returns the text without a byte order mark and the Python codec name used.
    """
    if encoding is not None:
        return _decode_override(data, file_name, encoding), encoding
    encoding = detect_encoding(data, file_name)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        # A damaged byte, or one past the megabyte that detection reads, is replaced
        # with U+FFFD when such bytes are rare, and the file is rejected otherwise.
        text = data.decode(encoding, errors="replace")
        replaced = text.count("\ufffd")
        if replaced > _max_replacements(len(text)):
            raise DataError("data.undetected_encoding", file=file_name) from None
        logger.warning("%s: replaced %d invalid %s byte sequences with U+FFFD", file_name, replaced, encoding)
    return text.lstrip("\ufeff"), encoding


def _decode_override(data: bytes, file_name: str, encoding: str) -> str:
    try:
        return data.decode(encoding).lstrip("\ufeff")
    except LookupError:
        raise DataError("data.unknown_encoding", file=file_name, encoding=encoding) from None
    except UnicodeDecodeError as exc:
        logger.debug("decoding %s as %s failed at byte %d", file_name, encoding, exc.start)
        raise DataError("data.bad_encoding", file=file_name, encoding=encoding) from None


def _max_replacements(characters: int) -> int:
    return 10 + characters // 1000


def detect_encoding(data: bytes, file_name: str) -> str:
    """Detect the text encoding: byte order mark, UTF-16 without a mark, strict UTF-8,
    then charset-normalizer on the first megabyte.

    Raises:
        DataError: the bytes contain zero bytes but are not UTF-16, so the file is binary,
            or no encoding decodes them.
    """
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    encoding = _guess_utf16_without_bom(data)
    if encoding is None and b"\x00" in data[:8192]:
        raise DataError("data.binary_file", file=file_name)
    if encoding is None:
        try:
            data.decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError:
            encoding = _guess_with_charset_normalizer(data)
    if encoding is None:
        raise DataError("data.undetected_encoding", file=file_name)
    logger.debug("detected encoding %s for %s", encoding, file_name)
    return encoding


def _guess_utf16_without_bom(data: bytes) -> str | None:
    # Mostly-ASCII UTF-16 has a zero byte in every other position.
    sample = data[:4096]
    even_zeros = sample[0::2].count(0)
    odd_zeros = sample[1::2].count(0)
    half = len(sample) // 2
    if half and odd_zeros > 0.25 * half and even_zeros < 0.05 * half:
        return "utf-16-le"
    if half and even_zeros > 0.25 * half and odd_zeros < 0.05 * half:
        return "utf-16-be"
    return None


def _guess_with_charset_normalizer(data: bytes) -> str | None:
    """Pick the encoding of the first megabyte among charset-normalizer's matches.

    ``_match_rank`` picks among the matches in ``_DETECTION_CANDIDATES``. When that
    decoding is mostly rare characters, a candidate that decodes to frequent characters
    apart from a few invalid bytes wins, and below half frequent characters
    charset-normalizer's pick among all encodings does. Returns ``None`` when even that
    pick is mostly rare characters.
    """
    sample = _detection_sample(data)
    matches = list(charset_normalizer.from_bytes(sample, cp_isolation=_DETECTION_CANDIDATES))
    logger.debug("charset-normalizer candidates: %s", [(m.encoding, m.chaos) for m in matches])
    best = max(matches, key=_match_rank, default=None)
    share = _match_rank(best)[0] if best is not None else 0.0
    if share < _DAMAGED_MIN_SHARE:
        damaged = _guess_damaged_candidate(sample)
        if damaged is not None:
            return damaged
    if share < _CANDIDATE_MIN_SHARE:
        # Mostly rare characters mean the text is probably in another language, such as
        # Russian in cp1251, whose letters read as rare hanzi in GB18030.
        best = charset_normalizer.from_bytes(sample).best() or best
    if best is None or _match_rank(best)[0] < _CANDIDATE_MIN_SHARE:
        # NOTE: charset-normalizer 3.4.7 offers only CJK encodings for a few lines of
        # Russian in cp1251, so such files end here and need the encoding override.
        return None
    name = codecs.lookup(best.encoding).name
    # GB18030 decodes everything that GBK and GB2312 do, and more.
    return "gb18030" if name in ("gbk", "gb2312") else name


def _detection_sample(data: bytes) -> bytes:
    sample = data[:_DETECTION_SAMPLE_BYTES]
    if len(data) > len(sample):
        # Cut at a line feed so the sample ends on a whole character, because 0x0A is
        # never a trailing byte in GB18030, Big5, Shift_JIS or EUC-KR.
        sample = sample[: sample.rfind(b"\n") + 1] or sample
    return sample


def _guess_damaged_candidate(sample: bytes) -> str | None:
    """Return the candidate that decodes ``sample`` to frequent characters apart from a
    few invalid bytes, as in a file damaged by a bad copy or a cut.

    Without this, charset-normalizer falls back to a single-byte code page that decodes
    every byte, and Chinese text turns into Latin letters.
    """
    for encoding in _DETECTION_CANDIDATES:
        text = sample.decode(encoding, errors="replace")
        if text.count("\ufffd") > _max_replacements(len(text)):
            continue
        if _common_share(text[:_SCORING_SAMPLE_CHARS], encoding) >= _DAMAGED_MIN_SHARE:
            logger.debug("sample decodes as %s apart from %d invalid bytes", encoding, text.count("\ufffd"))
            return encoding
    return None


def _match_rank(match: charset_normalizer.CharsetMatch) -> tuple[float, float, float, int]:
    """Rank a candidate by its share of frequent characters, then by charset-normalizer's
    language coherence and chaos, then by its place in ``_DETECTION_CANDIDATES``.

    The share comes first because chaos and coherence are noise on a few lines of
    names. The last key decides between encodings that all give frequent characters.

    NOTE: such ties go to GB18030, so a file whose only non-ASCII text is a Big5 name
    like 陳 (朝 in GB18030), or a few words of EUC-KR hangul, is misread. The encoding
    override is the way out.
    """
    name = codecs.lookup(match.encoding).name
    share = _common_share(str(match)[:_SCORING_SAMPLE_CHARS], name)
    preference = _DETECTION_CANDIDATES.index(name) if name in _DETECTION_CANDIDATES else len(_DETECTION_CANDIDATES)
    return (round(share, 2), round(match.coherence, 2), -round(match.chaos, 2), -preference)


def _common_share(text: str, encoding: str) -> float:
    """Return the share of non-ASCII characters in ``text`` that are frequent in
    ``encoding``, not counting U+FFFD replacements of invalid bytes."""
    text = text.replace("\ufffd", "")
    if encoding == "cp1252":
        return _western_share(text)
    characters = [character for character in text if ord(character) > 0x7F]
    if not characters:
        return 0.0
    return sum(_is_common(character, encoding) for character in characters) / len(characters)


def _western_share(text: str) -> float:
    """Return the share of non-ASCII characters that are common Western European letters
    or punctuation in runs of at most two.

    Accented letters stand between ASCII letters, while Chinese or Cyrillic bytes read
    as cp1252 give runs of three or more letters such as ÕÅÈý.
    """
    total = common = 0
    for run in re.findall(r"[^\x00-\x7f]+", text):
        total += len(run)
        if len(run) <= 2:
            common += sum(character in _COMMON_WESTERN for character in run)
    return common / total if total else 0.0


def _is_common(character: str, encoding: str) -> bool:
    family = _CODE_FAMILIES.get(encoding, encoding)
    if family not in _COMMON_CODES:
        return True
    codec, ranges = _COMMON_CODES[family]
    try:
        code = int.from_bytes(character.encode(codec), "big")
    except UnicodeEncodeError:
        return False
    return any(low <= code <= high for low, high in ranges)


def sniff_separator(text: str) -> tuple[str, int]:
    """Detect the separator of ``text`` and return it with the column count it gives.

    Every candidate is scored by how consistently it splits the sample's records into
    the same number of fields. ``csv.Sniffer`` only breaks ties between equal scores,
    because it misreads decimal commas and quoted multi-line fields on its own.
    """
    sample = text[:_SNIFF_SAMPLE_CHARS]
    scores = {separator: _consistency(text, separator) for separator in SEPARATORS}
    best = max(SEPARATORS, key=lambda separator: scores[separator])
    if scores[best][1] == 1:
        # The table has a single column. Taking the separator that occurs least keeps
        # text with commas in that column.
        best = min(_SINGLE_COLUMN_ORDER, key=sample.count)
        logger.debug("no separator splits the records consistently, using %r", best)
        return best, 1
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(SEPARATORS)).delimiter
    except csv.Error:
        sniffed = None
    if sniffed in scores and scores[sniffed] == scores[best]:
        best = sniffed
    logger.debug("separator scores %s, sniffer chose %r, using %r", scores, sniffed, best)
    return best, scores[best][1]


def _consistency(text: str, separator: str) -> tuple[float, int]:
    """Score a separator as (share of records with the modal field count, that count)."""
    counts = [len(fields) for fields in sample_records(text, separator) if any(f.strip() for f in fields)]
    if not counts:
        return (0.0, 1)
    modal_count, modal_records = max(Counter(counts).items(), key=lambda item: (item[1], item[0]))
    if modal_count < 2:
        return (0.0, 1)
    return (modal_records / len(counts), modal_count)


def sample_records(text: str, separator: str) -> list[list[str]]:
    """Parse up to the first 200 records found in the first 64 KiB of ``text``."""
    sample = text[:_SNIFF_SAMPLE_CHARS]
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=separator)
    records: list[list[str]] = []
    try:
        for fields in reader:
            if len(records) == _SNIFF_MAX_RECORDS:
                return records
            records.append(fields)
    except csv.Error:
        pass  # A field is left open at the end of the sample, and the complete records suffice.
    if len(text) > len(sample) and records:
        records.pop()  # The sample may have cut the last record short.
    return records


def table_width(records: list[list[str]], header_row: int) -> int | None:
    """Return the column count of the table whose header is ``records[header_row]``.

    The count is the largest of the header's field count, the most common field count
    below it (rows ending in an extra separator) and the first record's field count.
    The first record counts because pandas drops its fields past ``width`` without an
    error. Returns ``None`` when the sample contains no complete record.
    """
    if not records:
        return None
    if header_row >= len(records):
        return max(len(fields) for fields in records)
    body = [len(fields) for fields in records[header_row + 1 :] if any(f.strip() for f in fields)]
    modal = Counter(body).most_common(1)[0][0] if body else 1
    return max(len(records[header_row]), modal, len(records[0]))


def records_frame(records: list[list[str]]) -> pd.DataFrame:
    """Return the records as a frame, padding short records with empty strings."""
    width = max((len(fields) for fields in records), default=0)
    return pd.DataFrame([fields + [""] * (width - len(fields)) for fields in records])


def read_raw_text(text: str, separator: str, file_name: str, width: int | None) -> pd.DataFrame:
    """Parse the whole text into a frame of strings with integer column labels.

    Blank lines stay as rows of empty strings so that row positions match records, and
    missing trailing fields become empty strings. A record of only separators that is
    wider than the table (";;;" below a two-column header) also becomes a blank row.
    ``width`` is the column count, and the first record sets it when ``width`` is ``None``.

    Raises:
        DataError: a record with a non-empty field has more fields than ``width``.
    """
    try:
        return _parse_text(text, separator, width)
    except pd.errors.ParserError as exc:
        cleared = _clear_wide_empty_records(text, separator, width) if width is not None else None
        if cleared is None:
            raise _parse_error(text, separator, file_name, width, str(exc)) from None
    try:
        return _parse_text(cleared, separator, width)
    except pd.errors.ParserError as exc:
        raise _parse_error(cleared, separator, file_name, width, str(exc)) from None


def _parse_text(text: str, separator: str, width: int | None) -> pd.DataFrame:
    return pd.read_csv(
        io.StringIO(text), sep=separator, header=None, names=None if width is None else range(width),
        index_col=False, dtype=str, keep_default_na=False, skip_blank_lines=False, engine="c",
    )


def _clear_wide_empty_records(text: str, separator: str, width: int) -> str | None:
    """Empty the lines whose record is wider than ``width`` but has only blank fields.

    Such a record contains no quote, so it is exactly one line, and emptying the line
    keeps the positions of the other records. Returns ``None`` when there is none.
    """
    lines = io.StringIO(text, newline="").readlines()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    cleared = []
    start_line = 1
    try:
        for fields in reader:
            if len(fields) > width and not any(field.strip() for field in fields):
                cleared.append(start_line - 1)
            start_line = reader.line_num + 1
    except csv.Error:
        pass  # A field is over the csv module's size limit; the lines before it are checked.
    if not cleared:
        return None
    for index in cleared:
        if index < len(lines) and not lines[index].strip(separator + " \t\r\n"):
            lines[index] = lines[index][len(lines[index].rstrip("\r\n")):]
    return "".join(lines)


def _parse_error(text: str, separator: str, file_name: str, width: int | None, detail: str) -> DataError:
    """Build the error for a text that pandas failed to parse, locating the bad record."""
    width = width or len(next(csv.reader(io.StringIO(text, newline=""), delimiter=separator)))
    long_record, last_start = _scan_records(text, separator, width)
    if "EOF inside string" in detail:
        return DataError("data.unclosed_quote", file=file_name, line=last_start)
    if long_record is None:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", detail)
        if match is None:
            logger.debug("pandas failed to parse %s: %s", file_name, detail)
            return DataError("data.malformed_text", file=file_name)
        long_record = (int(match[2]), int(match[3]))
    line, found = long_record
    return DataError(
        "data.ragged_row", file=file_name, line=line, found=found, expected=width,
        separator=SEPARATOR_LABELS.get(separator, separator),
    )


def _scan_records(text: str, separator: str, width: int) -> tuple[tuple[int, int] | None, int]:
    """Return the 1-based start line and field count of the first record wider than
    ``width`` (``None`` when there is none), and the start line of the last record read."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    start_line = last_start = 1
    try:
        for fields in reader:
            if len(fields) > width:
                return (start_line, len(fields)), start_line
            last_start, start_line = start_line, reader.line_num + 1
    except csv.Error:
        pass  # A field is over the csv module's size limit, so the scan stops there.
    return None, last_start
