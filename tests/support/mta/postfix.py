"""Postfix (Debian's postfix package, installed) as a sending MTA in a lab.

Reuses tests/support/postfix.PostfixInstance for main.cf/master.cf, with the settings of a
relay that delivers to the Internet by MX lookups instead of the test relay's ``error:``
transport, and runs ``postfix start`` inside the lab (its resolver is the lab's DNS).
"""

from __future__ import annotations

import json
import os

from tests.support import postfix as pf
from tests.support.mta.drivers import LIFETIME, WARN_AFTER, Driver
from tests.support.mta.lab import Lab


class PostfixDriver(Driver):
    name = "postfix"

    def unavailable(self) -> str | None:
        return pf.unavailable_reason()

    def version(self, lab: Lab) -> str:
        import subprocess

        out = subprocess.run([pf.POSTCONF, "-d", "-h", "mail_version"], capture_output=True,
                             text=True, check=True).stdout
        return "Postfix " + out.strip()

    def start(self, lab: Lab) -> None:
        inst = self.instance = pf.PostfixInstance(
            str(lab.base / "postfix"),
            port=25,
            name="postfix",
            extra_main={
                "myhostname": self.hostname,
                "mydomain": "lab.test",
                "myorigin": "lab.test",
                "default_transport": "smtp",
                "relay_transport": "smtp",
                "relay_domains": "",
                "relay_recipient_maps": "",
                "transport_maps": "",
                # No postmaster copies: they would go to the test relay's bounce address.
                "notify_classes": "resource, software",
                "maximal_queue_lifetime": f"{LIFETIME}s",
                "bounce_queue_lifetime": f"{LIFETIME}s",
                "delay_warning_time": f"{WARN_AFTER}s",
                # Bounce on a 5xx greeting instead of deferring it like a 4xx (the default
                # "yes" moves on to the next MX and, with none left, retries until the
                # queue lifetime ends; postconf(5) itself calls that default incorrect).
                # Postfix's expiry notice is the 421 case's job.
                "smtp_skip_5xx_greeting": "no",
                "smtp_connect_timeout": "5s",
                "smtp_helo_timeout": "10s",
            },
        )
        inst.write_config()
        lab.run([pf.POSTFIX, "-c", inst.config_dir, "start"])
        lab.wait_smtp()

    def queue_size(self, lab: Lab) -> int:
        out = lab.run([pf.POSTQUEUE, "-c", self.instance.config_dir, "-j"]).stdout.decode()
        return len([json.loads(x) for x in out.splitlines() if x.strip()])

    def nudge(self, lab: Lab) -> None:
        # qmgr's "skipped, still being delivered" race (tests/support/postfix.py,
        # wait_retries) otherwise parks a message for 60 s whatever the backoff.
        lab.run([pf.POSTQUEUE, "-c", self.instance.config_dir, "-f"], check=False)

    def log(self, lab: Lab) -> str:
        try:
            with open(os.path.join(self.instance.base_dir, "maillog"), errors="replace") as fp:
                return fp.read()
        except (OSError, AttributeError):
            return ""
