"""Amazon SES notifications: bounce_handler/parse/ses.py (the corpus files are in
tests/data: ses_*.eml, read by tests/parse/test_corpus.py)."""

from __future__ import annotations

from bounce_handler.parse import parse


def test_ses_json_quoted_in_a_returned_copy_is_no_ses_notification():
    # An SES notification is the whole body; the same JSON inside a stranger's returned
    # copy (or a person's text) named victim@ as bounced before.
    for key in ('"eventType":"Bounce"', '"notificationType":"Bounce"'):
        raw = ("From: MAILER-DAEMON@mx.remote.example\nTo: alice@example.org\n"
               "Subject: failure notice\n\n"
               "Hi. This is the qmail-send program at mx.remote.example.\n"
               "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
               "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
               "<ops@remote.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
               "--- Below this line is a copy of the message.\n\n"
               "Subject: report\n\n{" + key + ',"bounce":{"bounceType":"Permanent",'
               '"bouncedRecipients":[{"emailAddress":"victim@example.com","status":"5.1.1"}]},'
               '"mail":{"source":"alice@example.org"}}\n').encode()
        r = parse(raw)
        assert [(x.address, x.detector) for x in r.recipients] == [
            ("ops@remote.example", "qmail")], key
