"""RFC 3834 automatic responses: vacation, out-of-office, challenge-response → autoreply.

Recognised by the headers auto-responders set (``Auto-Submitted: auto-replied`` per RFC 3834
§5, ``X-Autoreply: yes``, ``X-Autorespond``, ``Precedence: auto_reply``, Exchange's
``X-MS-Exchange-Inbox-Rules-Loop`` with "Automatic reply:" subjects) and the subjects they
use ("Out of Office", "Automatic reply:", "Abwesenheitsnotiz", "Réponse automatique",
"Respuesta automática", "Risposta automatica", "Please confirm your message" from
challenge-response filters).  A message that also looks like a delivery failure (from a
mailer-daemon, a failure subject) is left to the bounce detectors: Postfix and Exim mark
their bounces ``Auto-Submitted: auto-replied`` too.  Never counted as a bounce (Mailman
does; that is a known flaw).
"""

from __future__ import annotations

from bounce_handler.parse.base import FAILURE_SUBJECT, Hit, Sniff
from bounce_handler.parse.lazyre import I, lazy
from bounce_handler.parse.mime import Part

_SUBJECT = lazy(
    r"^(?:auto(?:matic)?[ -]?(?:reply|response|antwort|answer)|auto:|autoreply|"
    r"out of (?:the )?office|ooo\b|vacation|away from|abwesenheit|"
    r"r[ée]ponse automatique|absence|respuesta autom[áa]tica|risposta automatica|"
    r"resposta autom[áa]tica|automatisch antwoord|afwezig|"
    r"please confirm your (?:message|e-?mail)|confirm(?:ation)? required|"
    r"verify your (?:e-?mail|message)|i am (?:currently )?out of|on vacation)",
    I,
)
_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder", "x-vacation",
            "x-mailer-autoreply", "x-cr-hashedpuzzle", "x-challenge")
_CHALLENGE_TEXT = lazy(r"challenge|verify|confirm|boxbe|spam ?arrest|whitelist", I)


class AutoReply:
    """Auto-replies: no recipients, kind autoreply."""

    name = "autoreply"
    kind = "autoreply"

    def match(self, s: Sniff) -> bool:
        """Auto-reply headers or subjects, and nothing that says delivery failure."""
        if s.from_daemon:
            return False  # vacation replies come from the person, never a mailer-daemon
        if FAILURE_SUBJECT.search(s.subject):
            return False
        subject = s.subject.lstrip()
        if s.auto.startswith("auto-replied"):
            return True
        if _SUBJECT.match(subject):
            return True
        precedence = (s.msg.get("precedence") or "").lower()
        if "auto_reply" in precedence or "auto-reply" in precedence:
            return True
        return any(s.msg.get(h) is not None for h in _HEADERS)

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """Return the verdict (always, once matched): an auto-reply has no failed recipient."""
        return Hit([], kind="autoreply")


DETECTOR = AutoReply()
