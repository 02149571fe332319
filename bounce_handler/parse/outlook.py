"""Outlook.com / Hotmail and other Microsoft mail systems' older text notices.

Matches the Windows SMTP service / old Hotmail wording::

    This is an automatically generated Delivery Status Notification.

    Delivery to the following recipients failed.

           user@example.net

and "Unable to deliver message to the following recipients, because the message was
forwarded more than the maximum allowed times" (Hotmail loops).  Current Outlook.com
bounces are DSNs ("Delivery has failed to these recipients or groups") read by rfc3464.
"""

from __future__ import annotations

from bounce_handler.parse.lazyre import I, M, lazy
from bounce_handler.parse.textbounce import TextBounce


class Outlook(TextBounce):
    """Hotmail/Windows SMTP: indented addresses after "following recipients failed"."""

    name = "outlook"
    needles = ("automatically generated delivery status notification",
               "delivery to the following recipients failed",
               "unable to deliver message to the following recipients")
    start = lazy(r"(?:delivery to the following recipients? (?:failed|has been "
                       r"delayed)|unable to deliver message to the following recipients?)"
                       r"[^\n]*\n", I)
    stop = lazy(r"^[ \t]*(?:-{2,}|original message|reporting-mta)", I | M)
    delayed = lazy(r"has been delayed", I)


DETECTOR = Outlook()
