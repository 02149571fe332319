"""How an alert leaves: local sendmail(1), a webhook POST, or stdout.

Every failure raises ``DeliveryFailed`` (exit 75): the caller hands its claim back and
the next cron run tries again.
"""

from __future__ import annotations

import json
import subprocess

from bounce_handler.errors import EX_TEMPFAIL, BounceHandlerError

TIMEOUT = 30.0


class DeliveryFailed(BounceHandlerError):
    """The alert could not be handed over; it stays pending for the next run."""

    exit_code = EX_TEMPFAIL


def sendmail(binary: str, to: str, subject: str, body: str) -> None:
    """Submit the alert through the local MTA's sendmail (Postfix: postdrop into maildrop/).

    ``-i``: a line of a single dot in the body must not end the message (sendmail's
    historical convention, which Postfix's sendmail follows without -i).  The recipient
    goes on the command line after ``--`` rather than through -t, so a header injected
    into the flag text could never add recipients.
    """
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    msg = EmailMessage()
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid("bounce-handler")
    # RFC 3834 section 5: machine-generated, so vacation responders and other
    # auto-responders do not answer it (and no alert loop can start).
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body, cte=transfer_encoding(body))
    try:
        proc = subprocess.run(
            [binary, "-i", "--", to], input=msg.as_bytes(), capture_output=True,
            timeout=TIMEOUT,
        )
    except FileNotFoundError:
        raise DeliveryFailed(f"{binary} not found ([alert] sendmail names the binary)") from None
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DeliveryFailed(f"{binary}: {e}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise DeliveryFailed(
            f"{binary} exited {proc.returncode}: {err[-1] if err else 'no message'}"
        )


def transfer_encoding(body: str) -> str:
    """7bit for ASCII text, 8bit for other UTF-8: readable as it is, never quoted-printable.

    email's heuristics pick quoted-printable as soon as a line passes 78 characters (the
    alert's evidence lines do), which turns every ``=`` into ``=3D`` for anyone reading the
    raw mail, in a pager or a terminal mail client.  Both encodings only need lines within
    RFC 5322's 998 octets, which alerts.compose guarantees; Postfix (smtputf8 or 8BITMIME,
    RFC 6152) relays 8bit as it is.
    """
    return "7bit" if body.isascii() else "8bit"


def webhook(url: str, subject: str, body: str, flags: list[dict],
            summary: dict | None = None) -> None:
    """POST the alert as JSON to `url`.

    ``text`` is what Slack/Mattermost-style incoming webhooks show; ``subject``, ``flags``
    (those the text shows in full, most urgent first) and ``summary`` (counts of all of
    them: new by kind, withdrawn, new dead recipients by domain) are there for anything
    that wants the structure.
    """
    import urllib.error
    import urllib.request

    doc = {"text": f"{subject}\n\n{body}", "subject": subject, "flags": flags}
    if summary is not None:
        doc["summary"] = summary
    data = json.dumps(doc, default=str).encode()
    req = urllib.request.Request(
        url, data=data, method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "bounce-handler"},
    )
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            status = resp.status
    except urllib.error.HTTPError as e:
        raise DeliveryFailed(f"webhook answered {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise DeliveryFailed(f"webhook {url.split('?')[0]}: {getattr(e, 'reason', e)}") from None
    if not 200 <= status < 300:
        raise DeliveryFailed(f"webhook answered {status}")
