"""The mail merge: one rendered email made into many recipients' messages by filling in placeholders.

Many subscribers get the same news in the same words: everyone following a council hears of its new meeting. So the
content is rendered once per distinct content (the same events, matched terms, followed filters, time zone and day)
and merged per recipient, mail-merge style: the template is rendered and built by `message.build_message` with
placeholders where each recipient's links, address and Message-ID go, and each message is that template with the
placeholders filled in and its two parts quoted-printable encoded. Only what differs per recipient is computed per
recipient.
"""

from __future__ import annotations

import binascii
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtplib.email import flatten_message

from notifier.delivery.email.views import Links, Rendered
from notifier.tokens import Tokens

# Line ends as `build_message` reads a body's: CR, LF or CRLF.
_LINE_END = re.compile(r"\r\n|\r|\n")


class Placeholders:
    """The placeholders of the merge: `hole(name)` stands where the value `name` goes. Their mark is random per
    process, so no council's text can contain one."""

    __slots__ = ("_pattern", "mark", "split")

    def __init__(self) -> None:
        self.mark = "m" + secrets.token_hex(6)
        self._pattern = re.compile(re.escape(self.mark) + r"_([a-z0-9]+)_")
        # text around its placeholders: literal text at even places, the values' names at odd ones
        self.split: Callable[[str], list[str]] = self._pattern.split

    def hole(self, name: str) -> str:
        return f"{self.mark}_{name}_"

    def fill(self, text: str, values: Mapping[str, str]) -> str:
        return self._pattern.sub(lambda m: values[m[1]], text)


def link_holes(url: Callable[[str], str], holes: Placeholders, subscriptions: int) -> tuple[Links, list[str | None]]:
    """Links with placeholders for tokens: "manage", "all", "one" (a message about one subscription) or "stopN"
    (the N-th of several), and the stop links for the footer's list of what is followed. `url` makes a path
    absolute."""
    one = url("/unsubscribe/" + holes.hole("one")) if subscriptions == 1 else None
    everything = url("/unsubscribe/" + holes.hole("all"))
    links = Links(
        manage=url("/manage/" + holes.hole("manage")),
        unsubscribe=everything,
        # RFC 8058 one-click stops what this message is about: its one subscription, or everything
        one_click=one or everything,
        unsubscribe_subscription=one,
    )
    stops: list[str | None] = (
        [url("/unsubscribe/" + holes.hole(f"stop{i}")) for i in range(subscriptions)]
        if subscriptions > 1 else [None]
    )
    return links, stops


def link_tokens(tokens: Tokens, subscriber_id: int, subscription_ids: Sequence[int]) -> dict[str, str]:
    """The values for `link_holes`'s placeholders: one subscriber's link tokens."""
    manage, everything, each = tokens.email_links(subscriber_id, subscription_ids)
    values = {"manage": manage, "all": everything}
    if len(each) == 1:
        values["one"] = each[0]
    else:
        for i, token in enumerate(each):
            values[f"stop{i}"] = token
    return values


@dataclass(frozen=True, slots=True)
class MergeTemplate:
    """A rendered email with placeholders, and its MIME form from `build_message` made ready for the merge.

    `text` and `html` are the rendered bodies split around their placeholders (by `split`, when asked: only a
    message the email package must write needs them): literal text at even places, the names of the values that
    go in between at odd ones ("to", "msgid" and the links' tokens). `pieces` is the whole
    message on the wire: bytes where it is the same for every recipient (the bodies' lines without placeholders
    already quoted-printable encoded), and between them `_Fill`s, the header lines and body lines that hold
    placeholders, filled in and encoded per recipient. Quoted-printable encodes each line on its own (soft breaks
    and the escaping of trailing white space and of a lone dot never reach past a line end), so encoding a body's
    lines in runs gives the same bytes as encoding it whole, and a recipient's message costs only the few lines
    with their links.
    """

    TO = "recipient@merge.invalid"
    TEXT = "mergetextbody"
    HTML = "mergehtmlbody"

    rendered: Rendered
    links: Links
    pieces: list[bytes | _Fill]
    split: Callable[[str], list[str]] = field(repr=False, compare=False)

    @property
    def text(self) -> list[str]:
        return self.split(self.rendered.text)

    @property
    def html(self) -> list[str]:
        return self.split(self.rendered.html)

    @classmethod
    def holes(cls, rendered: Rendered) -> Rendered:
        return Rendered(rendered.subject, cls.TEXT, cls.HTML, rendered.kind)

    @classmethod
    def make(
        cls, rendered: Rendered, links: Links, message: EmailMessage, *, hole: Callable[[str], str],
        split: Callable[[str], list[str]],
    ) -> MergeTemplate:
        """The template for `rendered` from `message`, its form from `build_message` with `holes(rendered)` for
        bodies and `TO` for the address."""
        return cls.assemble(rendered, links, Skeleton.of(message, hole), hole=hole, split=split)

    @classmethod
    def assemble(
        cls, rendered: Rendered, links: Links, skeleton: Skeleton, *, hole: Callable[[str], str],
        split: Callable[[str], list[str]], date: str | None = None,
    ) -> MergeTemplate:
        """The template for `rendered` on `skeleton` (whose subject and links are `rendered`'s and `links`'s), with
        `date` for its Date header (default: the skeleton's own)."""
        head = skeleton.head.replace(hole("date"), date or skeleton.date)
        pieces = [
            *_frame_pieces(head, split, qp=False),
            # the HTML part's first lines hold the subject and the preheader, which differ in most digests
            *_kept_pieces(rendered.text, rendered.text_lines, split, first_kept=True),
            skeleton.middle,
            *_kept_pieces(rendered.html, rendered.html_lines, split, first_kept=False),
            skeleton.tail,
        ]
        # adjacent literals joined once here rather than for every recipient, each run in one join (adding them
        # one by one would copy what is joined so far again for each of a digest's 50-odd kept runs)
        joined: list[bytes | _Fill] = []
        run: list[bytes] = []
        for piece in pieces:
            if isinstance(piece, bytes):
                run.append(piece)
                continue
            if run:
                joined.append(b"".join(run))
                run = []
            joined.append(piece)
        if run:
            joined.append(b"".join(run))
        return cls(rendered, links, joined, split)

    def merge(self, values: Mapping[str, str]) -> bytes:
        """The message for one recipient: `values` has their address ("to"), its Message-ID ("msgid") and the
        tokens of their links."""
        return b"".join([p if isinstance(p, bytes) else p.fill(values) for p in self.pieces])


@dataclass(frozen=True, slots=True)
class Skeleton:
    """A message from `build_message` around placeholder bodies, flattened once: everything of a template but its
    bodies. The email package's header objects and generator cost more than rendering a digest, and all that
    differs between the skeletons of a pass is the subject and the shape of the links, so the mailer keeps one per
    subject and shape rather than building one per content.

    `head` is the header section with placeholders for the address ("to"), the Message-ID ("msgid") and the date
    ("date", whose value in the message is `date`), then the text part's headers; `middle` lies between the two
    bodies, `tail` after the HTML one.
    """

    head: str
    date: str
    middle: bytes
    tail: bytes

    @classmethod
    def of(cls, message: EmailMessage, hole: Callable[[str], str]) -> Skeleton:
        # ASCII whatever the server takes: quoted-printable bodies and RFC 2047 headers need no 8BITMIME
        data = flatten_message(message, cte_type="7bit")
        head, text_mark, rest = data.partition(b"\r\n" + MergeTemplate.TEXT.encode() + b"\r\n")
        middle, html_mark, tail = rest.partition(b"\r\n" + MergeTemplate.HTML.encode() + b"\r\n")
        message_id = str(message["Message-ID"]).encode()
        date = f"Date: {message['Date']}\r\n".encode()
        to = b" " + MergeTemplate.TO.encode()
        if (not (text_mark and html_mark) or head.count(message_id) != 1 or head.count(to) != 1
                or head.count(date) != 1):
            raise RuntimeError("the message template does not have the shape the merge expects")
        head = head.replace(to, b" " + hole("to").encode()).replace(message_id, hole("msgid").encode())
        head = head.replace(date, f"Date: {hole('date')}\r\n".encode())
        return cls(head.decode("ascii") + "\r\n", str(message["Date"]), middle + b"\r\n", tail)

    def with_subject(self, line: bytes, hole: Callable[[str], str]) -> Skeleton:
        """This skeleton, built with `hole("subject")` for its subject, with `line` for its Subject header (as
        `message.subject_line` writes it): one skeleton built whole serves every subject of its kind and links."""
        mark = f"Subject: {hole('subject')}\r\n"
        if self.head.count(mark) != 1:
            raise RuntimeError("the message template has no subject placeholder to fill")
        return Skeleton(self.head.replace(mark, line.decode("ascii")), self.date, self.middle, self.tail)


@dataclass(frozen=True, slots=True)
class _Fill:
    """Lines of the merged message that hold placeholders, as a `str.format` template (filled in C, where joining
    the parts in Python would cost several times as much); quoted-printable encoded (a body's lines) or ASCII as
    they are (a header's)."""

    template: str
    qp: bool

    @classmethod
    def of(cls, parts: list[str], *, qp: bool) -> _Fill:
        """From `parts` as in `MergeTemplate.text`: literal text at even places, value names at odd ones."""
        template = "".join(
            "{" + p + "}" if i % 2 else p.replace("{", "{{").replace("}", "}}") for i, p in enumerate(parts)
        )
        return cls(template, qp)

    def fill(self, values: Mapping[str, str]) -> bytes:
        text = self.template.format_map(values)
        return _qp(text) if self.qp else text.encode("ascii")


def _pieces(text: str, split: Callable[[str], list[str]], *, qp: bool) -> list[bytes | _Fill]:
    """`text` (whole lines) as the merge writes it: runs of lines without placeholders encoded now, runs of lines
    with them left to fill. Runs break only at line ends, where quoted-printable starts afresh.

    The placeholders are found by one split of the whole text, not one per line: a body has a few lines with
    placeholders among hundreds without."""
    parts = split(text)
    pieces: list[bytes | _Fill] = []

    def literal(chunk: str) -> None:
        if chunk:
            data = _qp(chunk) if qp else chunk.encode("ascii")
            if pieces and isinstance(pieces[-1], bytes):
                pieces[-1] += data
            else:
                pieces.append(data)

    fill: list[str] = []  # the run of lines with placeholders being gathered, as `split` gives it

    def close(rest: str) -> str:
        """Ends the run being gathered at the first line end of `rest`; returns what follows it."""
        end = rest.find("\n") + 1 or len(rest)
        fill.append(rest[:end])
        return rest[end:]

    if len(parts) == 1:
        literal(text)
        return pieces
    first = parts[0]
    cut = first.rfind("\n") + 1
    literal(first[:cut])
    fill.append(first[cut:])
    for i in range(1, len(parts), 2):
        fill.append(parts[i])
        between = parts[i + 1]
        last = i + 2 >= len(parts)
        if not last and "\n" not in between:  # the next placeholder is on the same line
            fill.append(between)
            continue
        after = close(between)
        cut = len(after) if last else after.rfind("\n") + 1
        if not after[:cut]:  # the next line has placeholders too (or nothing follows): the run goes on
            fill[-1] += after
            continue
        pieces.append(_Fill.of(fill, qp=qp))
        literal(after[:cut])
        fill = [] if last else [after[cut:]]
    if fill:
        pieces.append(_Fill.of(fill, qp=qp))
    return pieces


# Encoded runs kept: the pieces of the day's entries recur in thousands of emails (see `Rendered.html_lines`)
KEPT_RUNS = 8192
_kept_runs: dict[str, bytes] = {}


def _kept_pieces(
    body: str, runs: Sequence[str], split: Callable[[str], list[str]], *, first_kept: bool
) -> list[bytes | _Fill]:
    """`_pieces` of a body made of `runs` (its `Rendered.html_lines` or `text_lines`), each run between the first
    and the last (pieces kept by rendering, without placeholders) encoded once and kept, and the last (and the first
    if `first_kept`) by `_frame_pieces`. Quoted-printable encodes each line on its own, so the runs' encodings
    joined are the whole body's."""
    tidy = _tidy(body)
    if not runs or tidy is not body:
        return _pieces(tidy, split, qp=True)
    pieces = list(_frame_pieces(runs[0], split, qp=True)) if first_kept else _pieces(runs[0], split, qp=True)
    for run in runs[1:-1]:
        data = _kept_runs.get(run)
        if data is None:
            if len(split(run)) != 1:  # a placeholder: not kept
                pieces += _pieces(run, split, qp=True)
                continue
            if len(_kept_runs) >= KEPT_RUNS:
                _kept_runs.clear()
            data = _kept_runs[run] = _qp(run)
        pieces.append(data)
    pieces += _frame_pieces(runs[-1], split, qp=True)
    return pieces


# `_pieces` of the lines of a template that recur around its kept runs, kept: a header section (the same subject
# within the same second), a text part's first lines (the same kind, day and count), a footer (the same
# subscriptions, with placeholders for the links)
_kept_frames: dict[tuple[str, bool, Callable[[str], list[str]]], tuple[bytes | _Fill, ...]] = {}


def _frame_pieces(text: str, split: Callable[[str], list[str]], *, qp: bool) -> tuple[bytes | _Fill, ...]:
    key = (text, qp, split)
    found = _kept_frames.get(key)
    if found is None:
        if len(_kept_frames) >= KEPT_RUNS:
            _kept_frames.clear()
        found = _kept_frames[key] = tuple(_pieces(text, split, qp=qp))
    return found


def join_parts(parts: list[str], values: Mapping[str, str]) -> str:
    """`parts` as in `MergeTemplate.text`, with `values` in place of the names."""
    return "".join(values[p] if i % 2 else p for i, p in enumerate(parts))


def _tidy(text: str) -> str:
    """A body's line ends as `build_message` leaves them: plain newlines, and one at the end. Rendered text has
    them already (`render` tidies it so); placeholders' values hold no line breaks, so this holds for the filled
    text too."""
    if "\r" in text or not text.endswith("\n"):
        # line ends as bytes.splitlines sees them (CR, LF, CRLF), not str.splitlines's wider set
        lines = _LINE_END.split(text)
        if lines[-1] == "":
            lines.pop()
        text = "\n".join(lines) + "\n"
    return text


def _qp(text: str) -> bytes:
    """Lines of a body as `build_message` encodes them: UTF-8, quoted-printable, CRLF line ends. `text` is tidy
    (see `_tidy`)."""
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
