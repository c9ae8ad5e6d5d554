"""The mail-merge's pieces: bodies encoded line run by line run must be the bytes of the body encoded whole, and
the link tokens made together must be the tokens made one by one."""

from __future__ import annotations

import hmac
import random
import re
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer

from notifier.delivery.email.merge import MergeTemplate, _Fill, _pieces, _qp, _tidy
from notifier.delivery.email.views import Links, Rendered
from notifier.tokens import KeyedHmac, Tokens

MARK = "m0123456789ab"
PLACEHOLDER = re.compile(re.escape(MARK) + r"_([a-z0-9]+)_")
VALUES = {"manage": "WzEyMzQ1XQ.axL_aw.Qmad5yBB_Yok4fHkn0TaG5D1ofI", "one": "WzEsMl0.axL_aw.x-y_z", "to": "a@b.example",
          "msgid": "<0123abcd@notifier.test>"}

LINKS = Links(manage="https://a.example/m", unsubscribe="https://a.example/u")


def hole(name: str) -> str:
    return f"{MARK}_{name}_"


def merged(text: str) -> bytes:
    pieces = _pieces(_tidy(text), PLACEHOLDER.split, qp=True)
    return b"".join(p if isinstance(p, bytes) else p.fill(VALUES) for p in pieces)


def whole(text: str) -> bytes:
    """What the merge replaced: the filled body encoded in one go."""
    return _qp(_tidy(PLACEHOLDER.sub(lambda m: VALUES[m[1]], text)))


@pytest.mark.parametrize("text", [
    "",
    "one line without an end",
    "Manage: https://alerts.example.org/manage/" + hole("manage") + "\n",
    # a line that soft-breaks just where the token is, trailing white space, a lone dot, '=' and non-ASCII text
    "x" * 60 + " https://alerts.example.org/unsubscribe/" + hole("one") + " \n.\n= café —\n",
    "<a href=\"https://alerts.example.org/manage/" + hole("manage") + "\">Manage</a>\t\n" + "y" * 200 + "\n",
    "CR and CRLF\r\nline ends\rmixed in " + hole("one") + "\r\n",
    "{braces} stay as they are " + hole("manage") + " {and} {{these}}\n",
    "line\u2028with a Unicode line separator " + hole("manage") + "\nnext\x0bline\n",
])
def test_a_body_merged_in_runs_is_the_body_encoded_whole(text: str) -> None:
    assert merged(text) == whole(text)


def test_merged_bodies_match_whole_ones_over_random_text() -> None:
    rng = random.Random(7)
    alphabet = ["a", "b", " ", "\t", ".", "=", "é", "—", "{", "}", "\n", "\n", "\r"]
    for _ in range(400):
        words = []
        for _ in range(rng.randrange(0, 60)):
            if rng.random() < 0.08:
                words.append(hole(rng.choice(["manage", "one"])))
            else:
                words.append("".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 30))))
        text = "".join(words)
        assert merged(text) == whole(text), text


def test_only_lines_with_placeholders_are_left_to_fill() -> None:
    text = "static one\nstatic two\nlink " + hole("manage") + "\nstatic three\n"
    pieces = _pieces(text, PLACEHOLDER.split, qp=True)
    assert [type(p) for p in pieces] == [bytes, _Fill, bytes]
    assert pieces[0] == b"static one\r\nstatic two\r\n"


def test_a_template_refuses_a_message_of_an_unexpected_shape() -> None:
    message = EmailMessage()
    message["To"] = "someone@example.org"
    message["Message-ID"] = "<x@notifier.test>"
    message.set_content("no placeholders here\n")
    with pytest.raises(RuntimeError):
        MergeTemplate.make(Rendered("s", "t", "h", "alert"), LINKS, message, hole=hole, split=PLACEHOLDER.split)


@pytest.mark.parametrize("subscriptions", [[], [7], [7, 8, 123456789]])
def test_email_link_tokens_are_the_tokens_made_one_by_one(subscriptions: list[int]) -> None:
    signed_at = 1_764_000_000.0
    tokens = Tokens("a-secret-key-for-tests-only-0123456789", clock=lambda: signed_at)
    manage, everything, each = tokens.email_links(42, subscriptions)
    assert manage == tokens.make("manage", 42)
    assert everything == tokens.make("unsubscribe", 42)
    assert each == [tokens.make("unsubscribe", 42, s) for s in subscriptions]
    # and itsdangerous reads them
    library = URLSafeTimedSerializer("a-secret-key-for-tests-only-0123456789", salt="notifier.unsubscribe")
    assert [library.loads(t) for t in each] == [[42, s] for s in subscriptions]
    assert tokens.read("manage", manage).subscriber_id == 42


@settings(max_examples=300)
@given(key=st.binary(max_size=300), message=st.binary(max_size=300), name=st.sampled_from(["sha1", "sha256"]))
def test_a_keyed_hmac_is_the_standard_hmac(key: bytes, message: bytes, name: str) -> None:
    """Keys shorter than, as long as and longer than a block (64 bytes for both digests), messages of any length."""
    keyed = KeyedHmac(key, name)
    assert keyed.digest(message) == hmac.digest(key, message, name)
    assert keyed.digest(message + b"again") == hmac.digest(key, message + b"again", name)  # the begun hashes kept


def test_tokens_made_in_a_new_second_carry_its_time() -> None:
    now = [1_764_000_000.0]
    tokens = Tokens("a-secret-key-for-tests-only-0123456789", clock=lambda: now[0])
    first = tokens.make("manage", 1)
    now[0] += 1
    second = tokens.make("manage", 1)
    assert first != second
    library = URLSafeTimedSerializer("a-secret-key-for-tests-only-0123456789", salt="notifier.manage")
    assert library.loads(first, return_timestamp=True)[1].timestamp() == 1_764_000_000
    assert library.loads(second, return_timestamp=True)[1].timestamp() == 1_764_000_001


def test_token_ids_must_be_integers() -> None:
    tokens = Tokens("a-secret-key-for-tests-only-0123456789")
    with pytest.raises(TypeError):
        tokens.email_links(1, [True])
    with pytest.raises(TypeError):
        tokens.make("manage", "1")  # type: ignore[arg-type]


@pytest.mark.parametrize("subject", [
    "Your daily digest for Thu 4 Dec 2025: 7 updates",
    "Ynys M\u00f4n County Council: Pwyllgor Cynllunio \u2013 Planning: New meeting " * 2,
    "A long subject that the header folder has to break over more than one line, " * 3,
])
def test_a_template_on_a_kept_skeleton_is_the_template_built_whole(subject: str) -> None:
    """The mailer keeps a message's MIME skeleton per subject and reuses it for other contents: the bytes must be
    those of the message built whole for that content (but for the MIME boundary, random in each)."""
    from notifier.delivery.email.merge import Placeholders, Skeleton, link_holes
    from notifier.delivery.email.message import build_message

    holes = Placeholders()
    links, _ = link_holes(lambda p: "https://alerts.example.org" + p, holes, 1)

    def built(rendered: Rendered) -> EmailMessage:
        return build_message(MergeTemplate.holes(rendered), to=MergeTemplate.TO, mail_from="Alerts <a@example.org>",
                             links=links, list_id="alerts.example.org", message_id_domain="example.org")

    first = Rendered(subject, "first text\n", "<p>first</p>\n", "digest")
    skeleton = Skeleton.of(built(first), holes.hole)
    values = {"manage": "M", "all": "A", "one": "O", "to": "someone@example.net", "msgid": "<1@example.org>"}
    for text in ("second text, caf\u00e9 \u2014 " * 30 + "\nManage: " + links.manage + "\n",
                 "x\n" * 500 + "Manage: " + links.manage + "\n" + ".\n"):
        rendered = Rendered(subject, text, "<p>" + text + "</p>\n", "digest")
        whole = MergeTemplate.make(rendered, links, message := built(rendered), hole=holes.hole, split=holes.split)
        kept = MergeTemplate.assemble(rendered, links, skeleton, hole=holes.hole, split=holes.split,
                                      date=str(message["Date"]))
        boundary = re.compile(rb"={15}\d+==")
        assert boundary.sub(b"B", kept.merge(values)) == boundary.sub(b"B", whole.merge(values))
        assert b"Manage: https://alerts.example.org/manage/M\r\n" in kept.merge(values)


@pytest.mark.parametrize("subject", [
    "Your daily digest for Thu 4 Dec 2025: 7 updates",
    "Ynys M\u00f4n County Council: Pwyllgor Cynllunio \u2013 Planning: New meeting " * 2,
    "A long subject that the header folder has to break over more than one line, " * 3,
    "Two  spaces,\ttab and a very long word: " + "x" * 120,
    "Caf\u00e9 " * 40,
])
def test_a_skeleton_with_its_subject_put_in_is_the_skeleton_built_for_that_subject(subject: str) -> None:
    """The mailer builds one skeleton for a kind and its links with a placeholder subject, and puts each content's
    subject line in: the messages must be those of a skeleton built whole for that subject."""
    from notifier.delivery.email.merge import Placeholders, Skeleton, link_holes
    from notifier.delivery.email.message import build_message, subject_line

    holes = Placeholders()
    links, _ = link_holes(lambda p: "https://alerts.example.org" + p, holes, 1)

    def built(subject: str) -> EmailMessage:
        return build_message(MergeTemplate.holes(Rendered(subject, "", "", "alert")), to=MergeTemplate.TO,
                             mail_from="Alerts <a@example.org>", links=links, list_id="alerts.example.org",
                             message_id_domain="example.org")

    base = Skeleton.of(built(holes.hole("subject")), holes.hole)
    whole = Skeleton.of(built(subject), holes.hole)
    made = base.with_subject(subject_line(subject), holes.hole)
    rendered = Rendered(subject, "text\nManage: " + links.manage + "\n", "<p>html</p>\n", "alert")
    values = {"manage": "M", "all": "A", "one": "O", "to": "someone@example.net", "msgid": "<1@example.org>"}
    boundary = re.compile(rb"={15}\d+==")
    merged = [
        boundary.sub(b"B", MergeTemplate.assemble(rendered, links, skeleton, hole=holes.hole, split=holes.split,
                                                  date="Thu, 04 Dec 2025 10:00:00 +0000").merge(values))
        for skeleton in (whole, made)
    ]
    assert merged[0] == merged[1]
    assert merged[0].count(b"\r\nSubject: ") == 1


def test_a_template_from_the_parts_kept_runs_is_the_template_from_the_parts_whole() -> None:
    """The merge keeps the encoding of each run of a rendered part that rendering kept: the messages must be those
    encoded from the parts whole."""
    from dataclasses import replace
    from datetime import date

    from notifier.delivery.email.merge import Placeholders, Skeleton, link_holes
    from notifier.delivery.email.message import build_message
    from notifier.delivery.email.render import email_environment, render_digest
    from tests.delivery.email.samples import FOLLOWING, agenda, cancelled, decision

    holes = Placeholders()
    links, _ = link_holes(lambda p: "https://alerts.example.org" + p, holes, 1)
    env = email_environment()
    values = {"manage": "M", "all": "A", "one": "O", "to": "someone@example.net", "msgid": "<1@example.org>"}
    odd = replace(agenda(), title="Caf\u00e9 " * 30 + "   ", excerpt="=  \t. trailing\u00a0")
    for entries in ([agenda()], [odd, decision(), cancelled()], [cancelled(), odd]) * 2:
        rendered = render_digest(entries, day=date(2025, 12, 4), links=links, following=FOLLOWING, env=env)
        assert rendered.html_lines
        skeleton = Skeleton.of(build_message(MergeTemplate.holes(rendered), to=MergeTemplate.TO,
                                             mail_from="Alerts <a@example.org>", links=links,
                                             list_id="alerts.example.org", message_id_domain="example.org"),
                               holes.hole)
        runs = MergeTemplate.assemble(rendered, links, skeleton, hole=holes.hole, split=holes.split, date="D")
        assert rendered.text_lines
        whole = MergeTemplate.assemble(replace(rendered, html_lines=(), text_lines=()), links, skeleton,
                                       hole=holes.hole, split=holes.split, date="D")
        assert runs.merge(values) == whole.merge(values)
        assert b"/manage/M" in runs.merge(values)
