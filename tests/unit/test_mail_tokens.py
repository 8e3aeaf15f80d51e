"""Our token in a reply's subject: written once, never cut off, read back at the domains mail was sent to."""

from __future__ import annotations

from channels.email.tokens import reply_subject, subject_ids

TOKEN = "cc-" + "ab" * 16


def test_the_reply_subject_carries_one_token_and_one_re() -> None:
    older = f"cc-{'cd' * 16}"
    subject = reply_subject(f"RE: Aw: re: My order [#{older}]", f"{TOKEN}@shop.example")
    assert subject == f"Re: My order [#{TOKEN}]"
    assert reply_subject("", f"{TOKEN}@shop.example") == f"Re: your message [#{TOKEN}]"


def test_a_subject_at_the_bound_keeps_the_token_whole() -> None:
    subject = reply_subject("x" * 2000, f"{TOKEN}@shop.example")
    assert len(subject) == 998 and subject.endswith(f" [#{TOKEN}]")


def test_tokens_in_a_subject_name_our_replies_at_the_recipients_domains() -> None:
    ids = subject_ids(f"Re: size [#{TOKEN.upper()}] and [#cc-short]", ["support@shop.example", "x@Other.Example"])
    assert ids == [f"{TOKEN}@shop.example", f"{TOKEN}@other.example"]
    assert subject_ids("Re: no token", ["support@shop.example"]) == []
