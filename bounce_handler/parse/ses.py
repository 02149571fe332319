r"""Amazon SES bounce and complaint notifications (the JSON SES mails via SNS/email).

Matches a body such as::

    {"notificationType":"Bounce","bounce":{"bounceType":"Permanent",
     "bouncedRecipients":[{"emailAddress":"user@example.net","action":"failed",
     "status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}],
     "reportingMTA":"dsn; a8-50.smtp-out.amazonses.com"}, "mail":{"source":
     "sender@example.com","messageId":"...","commonHeaders":{"subject":"Hello"}}}

SES event publishing names the type "eventType" instead, with the same "bounce" and
"complaint" objects.  ``notificationType: Complaint`` gives kind complaint with
``complainedRecipients``.  SES's ordinary bounces to the envelope sender are RFC 3464
DSNs and read by rfc3464.  Long lines broken in transit ("...","!\n
Content-Transfer-Encoding") are joined again.
"""

from __future__ import annotations

from bounce_handler.parse.base import Hit, Sniff, clean_address, rcpt
from bounce_handler.parse.mime import Part
from bounce_handler.parse.model import Recipient


class SES:
    """SES JSON notifications (json is imported only for these messages)."""

    name = "ses"
    kind = None

    def match(self, s: Sniff) -> bool:
        r"""Look for the JSON keys SES uses.

        "notificationType" (SES feedback notifications) or "eventType" (SES event
        publishing through a configuration set, the newer way), unquoted: inside an SNS
        envelope the notification is a JSON string, its quotes escaped
        (``"Message" : "{\"notificationType\":\"Bounce\", ...``).
        """
        low = s.lower
        # The notification is the whole body: JSON quoted in a returned copy or in a
        # person's text never is one.
        return low.lstrip().startswith("{") and (
            "notificationtype" in low or '"eventtype' in low) and (
            "bounce" in low or "complaint" in low)

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """Recipients of the notification; None if the JSON does not parse."""
        import json  # only SES notifications pay for it (json costs ~2 ms to import)

        text = s.text
        i, j = text.find("{"), text.rfind("}")
        data = _load(json, text[i : j + 1])
        if not isinstance(data, dict):
            return None
        if isinstance(data.get("Message"), str):
            data = _load(json, data["Message"])  # SNS envelope around the notification
            if not isinstance(data, dict):
                return None
        ntype = str(data.get("notificationType") or data.get("eventType") or "").lower()
        mail = data.get("mail") or {}
        sender = clean_address(str(mail.get("source") or "")) or None
        if ntype == "complaint":
            c = data.get("complaint") or {}
            ftype = c.get("complaintFeedbackType") or "abuse"
            out = [Recipient(address=str(r.get("emailAddress")), action=None,
                             diagnostic=f"feedback-type: {ftype}")
                   for r in c.get("complainedRecipients") or [] if r.get("emailAddress")]
            return Hit(out, kind="complaint", sender=sender)
        if ntype != "bounce":
            return None
        b = data.get("bounce") or {}
        temporary = str(b.get("bounceType") or "").lower() == "transient"
        out = []
        for r in b.get("bouncedRecipients") or []:
            a = r.get("emailAddress")
            if not a:
                continue
            diag = str(r.get("diagnosticCode") or "")
            if ";" in diag[:8]:
                diag = diag.split(";", 1)[1]
            out.append(rcpt(str(a), diag or b.get("bounceSubType"), status=r.get("status"),
                            action=r.get("action") or ("delayed" if temporary else "failed")))
        mta = str(b.get("reportingMTA") or "").split(";")[-1].strip() or None
        return Hit(out, sender=sender, reporting_mta=mta) if out else None


def _load(json, text: str):
    r"""The JSON document, or None; undoes the line wrapping SNS's mails suffer.

    SNS mails the notification as one long line; a mail system enforcing a line-length
    limit (Sendmail's "L" option) breaks it with "!" + newline + blank
    (``{"name":"!\n Content-Transfer-Encoding"``); others re-wrap at 76 columns with a
    bare newline.  A raw newline cannot occur inside a JSON string, so where the document
    does not parse, those are the wrapping.
    """
    for repair in (None, "!\n ", "\n"):
        if repair is not None:
            if repair not in text:
                continue
            # A plain newline inside a string is a wrap too (76-column re-wrapping).
            text = text.replace(repair, "")
        try:
            return json.loads(text)
        except ValueError:
            pass
    return None


DETECTOR = SES()
