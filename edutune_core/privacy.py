"""Student privacy: find names, ID numbers, phone numbers and e-mail addresses in a table,
and drop or pseudonymise them before training.

Detection uses rules that a teacher can check by reading them:

- Column names: 姓名, name, student, 学号, student_id, 身份证, phone, 邮箱 and the like.
- Whole cells: a common Chinese surname followed by one to three characters, also
  when names repeat, or two or three capitalised words ("Anna Smith") in a column of
  mostly distinct values. Codes
  such as S2024001 or 20240001 in a column of unique values.
- Anywhere in a cell: e-mail addresses, Chinese mobile numbers (1[3-9] and 9 digits),
  landlines and international numbers, Chinese resident ID numbers (18 characters
  with a valid checksum), student and national ID numbers after a cue ("学号是",
  "身份证号：", "student ID is"), and names next to a cue ("我叫李明", "名字是李明",
  "李明同学", "Ms. Novak", "My name is Anna Smith") or already found in a name column.
  Two capitalised words alone do not count as a name inside free text, because in
  essays they are mostly places and titles ("New York", "Empire State").

Pseudonymising gives every distinct value one placeholder (学生001 for a Chinese name,
STUDENT_001 for another name, ID_001, PHONE_001, EMAIL_001), so the same name maps to the
same placeholder in every column and text of one table.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import pandas as pd

from edutune_core._headers import cell_text
from edutune_core.data import is_missing_cell

logger = logging.getLogger(__name__)

NAME, STUDENT_ID, NATIONAL_ID, PHONE, EMAIL = "name", "student_id", "national_id", "phone", "email"
KINDS = (NAME, STUDENT_ID, NATIONAL_ID, PHONE, EMAIL)
KEEP, PSEUDONYMISE, DROP = "keep", "pseudonymise", "drop"
ACTIONS = (PSEUDONYMISE, DROP, KEEP)

# Share of a column's filled cells that must be one kind for the column to hold that kind.
COLUMN_SHARE = 0.6
# Cells longer than this on average are free text, scanned for values inside the text.
FREE_TEXT_CHARS = 40
_EXAMPLES = 3

# Common surnames, in simplified and traditional forms. Surnames that mostly start
# ordinary words (师, 全, 方, 和, 时, 明) are left out to keep free-text matches precise.
_SURNAMES_SINGLE = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔汤温康施牛樊"
    "葛邢乔伍庞颜倪庄聂章鲁岳翟殷詹欧耿焦俞柳祝阮梅童凌毕裴霍涂翁冉骆蓝靳柴鲍喻祁蒲滕饶牟艾尤穆缪褚娄窦戚岑"
    "陳黃趙吳劉楊張鄭謝許韓馮鄧蕭葉蘇呂盧鍾譚陸賈韋鄒龔萬錢嚴湯孫馬羅蔣賴顏莊聶魯歐"
)
_SURNAMES_DOUBLE = ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "夏侯",
                    "令狐", "端木", "歐陽", "司馬", "諸葛", "東方", "公孫", "長孫")
_CHINESE_NAME = f"(?:{'|'.join(_SURNAMES_DOUBLE)}|[{_SURNAMES_SINGLE}])[\u4e00-\u9fff]{{1,2}}"
# A whole cell of 2-4 characters: a surname and a given name of up to three characters.
_CHINESE_NAME_CELL = re.compile(f"(?:{'|'.join(_SURNAMES_DOUBLE)}|[{_SURNAMES_SINGLE}])[\u4e00-\u9fff]{{1,3}}")
# Characters of class, grade, campus and role names ("高一三班", "张江校区", "王老师"), which
# start with a surname but are not names.
_NOT_IN_NAME_CELL = re.compile("[一二三四五六七八九十零班级年组队部院系校区室楼老师同学家长]")
_UPPER, _LOWER = "A-ZÀ-ÖØ-Þ", "a-zß-öø-ÿ"
_WORD = f"[{_UPPER}][{_LOWER}]+(?:[-'][{_UPPER}]?[{_LOWER}]+)?"
_ENGLISH_NAME = f"{_WORD}(?: [{_UPPER}]\\.)?(?: {_WORD}){{1,2}}"
_NAME_CELL = re.compile(f"{_CHINESE_NAME}|{_ENGLISH_NAME}|{_WORD}, {_WORD}")
_LOWERCASE_WORDS = re.compile(r"[a-z ]+")
_CODE_CELL = re.compile(r"[A-Za-z]{1,3}[0-9]{4,}|[0-9]{6,}")
_EMAIL = re.compile(r"(?<![@\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*"
                    r"\.[A-Za-z]{2,}(?![\w@])")
_PHONE = re.compile(
    r"(?<![0-9])(?:(?:\+?86[- ]?)?1[3-9][0-9](?:[- ]?[0-9]{4}){2}"  # Chinese mobile
    r"|0[1-9][0-9]{1,2}-[0-9]{7,8}"  # Chinese landline with area code
    r"|\+[1-9][0-9]{0,2}[- ]?(?:\(?[0-9]{1,4}\)?[- ]?){1,4}[0-9]{3,4}"  # international, with a leading +
    r"|\(?[0-9]{3}\)?[-. ][0-9]{3}[-. ][0-9]{4})(?![0-9])")  # North American
_RESIDENT_ID = re.compile(
    r"(?<![0-9A-Za-z])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]"
    r"(?![0-9A-Za-z])")
# NOTE: the older 15-digit resident ID numbers (issued before 1999) have no checksum and
# are not detected.
_RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_STUDENT_ID_IN_TEXT = re.compile(
    r"(?:学号|学籍号|考号|工号|(?:student|staff|employee) ?(?:id|number|no\.?))(?:码)?\s*(?:是|为|is|:|：|#)?\s*"
    r"([A-Za-z]{0,3}[0-9]{4,})", re.IGNORECASE)
# A national ID number after its cue; the checksum test of _RESIDENT_ID does not apply here.
_NATIONAL_ID_IN_TEXT = re.compile(
    r"(?:身份证号|身份证|证件号)(?:码)?\s*(?:是|为|:|：)?\s*([0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9])")
_TITLE_NAME = re.compile(f"\\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\\.? ({_WORD}(?: {_WORD})?)")
_CUED_ENGLISH_NAME = re.compile(f"\\b(?:[Mm]y name is|[Mm]y name's|I am called|I'm called) ({_WORD}(?: {_WORD})?)")
_CUED_CHINESE_NAME = re.compile(
    f"(?:我叫|名叫|叫做|名字是|名字叫|姓名[:：]?\\s*|同学)({_CHINESE_NAME})"
    f"|({_CHINESE_NAME})(?=同学|说|告诉|的妈妈|的爸爸|的家长)")
# Characters that end a word or start a clause are never part of a given name, which
# keeps "老师是郑老师" or "方便了" from reading as names.
_NOT_IN_GIVEN_NAME = re.compile("[是的了在和说老师们我你他她就都也便把被对给从向同学家长妈爸这那有没不很]")

_HEADER_HINTS = (
    (NATIONAL_ID, re.compile(r"身份证|证件号|national.?id|id.?card|passport", re.IGNORECASE)),
    (STUDENT_ID, re.compile(r"学号|学籍号|考号|准考证|student.?(?:id|no|number)|^sid$", re.IGNORECASE)),
    (PHONE, re.compile(r"电话|手机|联系方式|phone|mobile|^tel", re.IGNORECASE)),
    (EMAIL, re.compile(r"邮箱|e-?mail", re.IGNORECASE)),
    (NAME, re.compile(r"姓名|名字|学生|考生|家长|联系人|^name$|first.?name|last.?name|surname|full.?name|"
                      r"student|pupil|parent|guardian|élève|schüler", re.IGNORECASE)),
)
_PLACEHOLDER_PREFIXES = {STUDENT_ID: "ID_", NATIONAL_ID: "ID_", PHONE: "PHONE_", EMAIL: "EMAIL_"}


@dataclass
class ColumnFinding:
    """Personal data found in one column.

    Attributes:
        column: The column.
        kinds: Number of cells with each kind of personal data.
        whole_cells: True when each cell is one value (a name column, an ID column),
            False when the values are inside longer text.
        by_header: The kind that the column name suggests, or None.
        examples: Up to three values found, masked for display.
    """

    column: str
    kinds: dict[str, int]
    whole_cells: bool
    by_header: str | None = None
    examples: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """Return the kind found in most cells."""
        return self.by_header or max(self.kinds, key=self.kinds.get)


@dataclass
class PrivacyReport:
    """The columns of a table that contain personal data."""

    rows: int
    findings: list[ColumnFinding]

    @property
    def columns(self) -> list[str]:
        return [finding.column for finding in self.findings]


def resident_id_valid(number: str) -> bool:
    """Check the ISO 7064 MOD 11-2 checksum of an 18-character Chinese resident ID number."""
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], _RESIDENT_ID_WEIGHTS))
    return "10X98765432"[total % 11] == number[17].upper()


def header_kind(column: str) -> str | None:
    """Return the kind of personal data that a column name suggests, or None."""
    name = str(column).strip()
    return next((kind for kind, pattern in _HEADER_HINTS if pattern.search(name)), None)


def mask(value: str) -> str:
    """Hide all characters but the first and, from four characters on, the last one, for showing examples."""
    if len(value) < 4:
        return value[:1] + "*" * (len(value) - 1)
    return value[0] + "*" * (len(value) - 2) + value[-1]


def scan_privacy(frame: pd.DataFrame, skip: tuple[str, ...] = ()) -> PrivacyReport:
    """Find the columns of ``frame`` that contain personal data, leaving out ``skip``.

    Columns of short cells are checked for whole-cell values first (a name or phone
    column). Text columns, and short columns that are not whole-cell values, are then
    searched for values inside the text, including the names of the name columns.
    """
    findings, names = [], set()
    texts = {}
    for column in frame.columns:
        values = _cell_values(frame[column])
        if column in skip or values.empty:
            continue
        finding = None
        if values.str.len().mean() < FREE_TEXT_CHARS:
            finding = _scan_cells(str(column), values)
        if finding is not None:
            findings.append(finding)
            if finding.kind == NAME:
                names |= set(values)
        elif not pd.api.types.is_numeric_dtype(frame[column]):
            texts[column] = values
    for column, values in texts.items():
        finding = _scan_text(str(column), values, names)
        if finding is not None:
            findings.append(finding)
    order = {column: position for position, column in enumerate(map(str, frame.columns))}
    findings.sort(key=lambda finding: order[finding.column])
    logger.info("privacy scan: %s", {finding.column: finding.kinds for finding in findings})
    return PrivacyReport(rows=len(frame), findings=findings)


def _cell_values(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return pd.Series([], dtype=str)
    present = values[~values.map(is_missing_cell).astype(bool)]
    return present.map(cell_text).astype(str).str.strip()


def _scan_cells(column: str, values: pd.Series) -> ColumnFinding | None:
    """Find a column whose cells are each one value: its name says so (姓名, 学号, phone),
    or most cells are a name, a code, a phone number, an e-mail address or an ID number."""
    share = COLUMN_SHARE * len(values)
    hinted = header_kind(column)
    if hinted == NAME and not _names_by_header(values):
        hinted = None
    kinds = {kind: count for kind, count in _inner_counts(values).items() if count}
    if hinted is None and not any(count >= share for count in kinds.values()):
        kinds = {}
        chinese_names = _count(values, _is_chinese_name_cell)
        if chinese_names >= share:
            # Chinese names may repeat (one row per essay): the surname list and the
            # excluded characters keep class and campus names out.
            kinds[NAME] = chinese_names
        elif _mostly_distinct(values) and _count(values, _NAME_CELL.fullmatch) >= share:
            kinds[NAME] = _count(values, _NAME_CELL.fullmatch)
        elif values.is_unique and _count(values, _CODE_CELL.fullmatch) >= share:
            kinds[STUDENT_ID] = _count(values, _CODE_CELL.fullmatch)
    if hinted is not None:
        kinds[hinted] = len(values)
    if not kinds:
        return None
    examples = [mask(value) for value in values.drop_duplicates().head(_EXAMPLES)]
    return ColumnFinding(column, kinds, whole_cells=True, by_header=hinted, examples=examples)


def _names_by_header(values: pd.Series) -> bool:
    """Check the values of a column whose name suggests names. Names may repeat (one row
    per essay), but a "guardian" column of mother/father/other contains roles, not names."""
    if _count(values, _NAME_CELL.fullmatch) >= COLUMN_SHARE * len(values):
        return True
    return _mostly_distinct(values) and _count(values, _LOWERCASE_WORDS.fullmatch) < len(values)


def _is_chinese_name_cell(value: str) -> bool:
    return bool(_CHINESE_NAME_CELL.fullmatch(value)) and not _NOT_IN_NAME_CELL.search(value)


def _mostly_distinct(values: pd.Series) -> bool:
    return values.nunique() >= 0.5 * len(values)


def _count(values: pd.Series, test) -> int:
    # Python's re runs the patterns, because pandas may hand str methods to pyarrow's
    # RE2, which has no lookbehind.
    return sum(1 for value in values if test(value))


def _inner_counts(values: pd.Series) -> dict[str, int]:
    return {EMAIL: _count(values, _EMAIL.search), PHONE: _count(values, _PHONE.search),
            NATIONAL_ID: _count(values, lambda text: any(map(resident_id_valid, _RESIDENT_ID.findall(text))))}


def _scan_text(column: str, values: pd.Series, names: set[str]) -> ColumnFinding | None:
    """Scan a free-text column for values inside the text."""
    kinds = {kind: 0 for kind in KINDS}
    examples = []
    for text in values:
        spans = find_spans(text, names)
        for kind in {kind for _, _, kind in spans}:
            kinds[kind] += 1
        examples.extend(mask(text[start:end]) for start, end, _ in spans[:1])
    kinds = {kind: count for kind, count in kinds.items() if count}
    if not kinds:
        return None
    return ColumnFinding(column, kinds, whole_cells=False, examples=list(dict.fromkeys(examples))[:_EXAMPLES])


def find_spans(text: str, names: set[str] = frozenset()) -> list[tuple[int, int, str]]:
    """Find personal data inside ``text`` as non-overlapping (start, end, kind) spans.

    ``names`` are names already found in a name column; they are found anywhere in the text.
    """
    spans = [(m.start(), m.end(), EMAIL) for m in _EMAIL.finditer(text)]
    spans += [(m.start(), m.end(), NATIONAL_ID) for m in _RESIDENT_ID.finditer(text) if resident_id_valid(m.group())]
    spans += [(m.start(1), m.end(1), STUDENT_ID) for m in _STUDENT_ID_IN_TEXT.finditer(text)]
    spans += [(m.start(1), m.end(1), NATIONAL_ID) for m in _NATIONAL_ID_IN_TEXT.finditer(text)]
    spans += [(m.start(), m.end(), PHONE) for m in _PHONE.finditer(text)]
    spans += [(m.start(1), m.end(1), NAME) for m in _TITLE_NAME.finditer(text)]
    spans += [(m.start(1), m.end(1), NAME) for m in _CUED_ENGLISH_NAME.finditer(text)]
    for match in _CUED_CHINESE_NAME.finditer(text):
        group = 1 if match.group(1) else 2
        surname_length = 2 if match.group(group)[:2] in _SURNAMES_DOUBLE else 1
        if not _NOT_IN_GIVEN_NAME.search(match.group(group)[surname_length:]):
            spans.append((match.start(group), match.end(group), NAME))
    spans += _known_name_spans(text, names)
    spans.sort(key=lambda span: (span[0], -(span[1] - span[0])))
    kept, end = [], -1
    for span in spans:
        if span[0] >= end:
            kept.append(span)
            end = span[1]
    return kept


def _known_name_spans(text: str, names: set[str]) -> list[tuple[int, int, str]]:
    """Find the names of a name column in free text, checking each candidate span against the set."""
    if not names:
        return []
    spans = []
    for match in re.finditer(f"(?=({_CHINESE_NAME}|{_ENGLISH_NAME}))", text):
        candidate = match.group(1)
        for length in range(len(candidate), 1, -1):
            if candidate[:length] in names:
                spans.append((match.start(1), match.start(1) + length, NAME))
                break
    return spans


def _comparable(kind: str, value: str) -> str:
    """Return the form of a value that decides whether two values are the same one,
    so 138-1234-5678 and +86 13812345678 get one placeholder."""
    if kind == PHONE:
        digits = re.sub(r"[^0-9]", "", value)
        return digits[2:] if len(digits) == 13 and digits.startswith("86") else digits
    if kind in (EMAIL, NATIONAL_ID):
        return value.casefold()
    return value


class Pseudonymiser:
    """Gives each distinct value of a kind one placeholder, numbered in order of first sight."""

    def __init__(self) -> None:
        self.placeholders: dict[tuple[str, str], str] = {}
        self.counts: dict[str, int] = {}

    def placeholder(self, kind: str, value: str) -> str:
        key = (kind, _comparable(kind, value))
        if key not in self.placeholders:
            prefix = _PLACEHOLDER_PREFIXES.get(kind, "STUDENT_")
            if kind == NAME and re.search("[\u4e00-\u9fff]", value):
                prefix = "学生"
            number = self.counts.get(prefix, 0) + 1
            self.counts[prefix] = number
            self.placeholders[key] = f"{prefix}{number:03d}"
        return self.placeholders[key]

    def replace_spans(self, text: str, names: set[str]) -> str:
        parts, position = [], 0
        for start, end, kind in find_spans(text, names):
            parts += [text[position:start], self.placeholder(kind, text[start:end])]
            position = end
        return "".join(parts) + text[position:]


def apply_privacy(frame: pd.DataFrame, report: PrivacyReport, actions: dict[str, str]) -> tuple[pd.DataFrame, dict]:
    """Drop or pseudonymise each column of ``report`` following ``actions`` (pseudonymise by default).

    Name columns are replaced first, so their names get the same placeholders in free
    text. Returns the new table and a summary of what was done that contains no value.

    Raises:
        ValueError: An action is not one of ``ACTIONS``.
    """
    unknown = {action for action in actions.values() if action not in ACTIONS}
    if unknown:
        raise ValueError(f"unknown privacy actions {sorted(unknown)}; expected one of {ACTIONS}")
    result = frame.copy()
    pseudonymiser = Pseudonymiser()
    chosen = {finding.column: actions.get(finding.column, PSEUDONYMISE) for finding in report.findings}
    ordered = sorted(report.findings, key=lambda finding: not finding.whole_cells)
    names = {cell_text(value) for finding in ordered if finding.whole_cells and finding.kind == NAME
             for value in frame[finding.column].dropna()}
    for finding in ordered:
        if chosen[finding.column] != PSEUDONYMISE:
            continue
        column = result[finding.column]
        present = ~column.map(is_missing_cell).astype(bool)
        if finding.whole_cells:
            replaced = column[present].map(lambda value: pseudonymiser.placeholder(finding.kind, cell_text(value).strip()))
        else:
            replaced = column[present].map(lambda value: pseudonymiser.replace_spans(cell_text(value), names))
        result[finding.column] = column.astype(object).where(~present, replaced)
    result = result.drop(columns=[column for column, action in chosen.items() if action == DROP])
    summary = {"rows": report.rows,
               "columns": [{"column": finding.column, "kinds": dict(finding.kinds), "action": chosen[finding.column]}
                           for finding in report.findings],
               "placeholders": len(pseudonymiser.placeholders)}
    logger.info("privacy actions applied: %s", chosen)
    return result, summary
