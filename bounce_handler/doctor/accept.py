"""Accepted: whether smtpd(8) takes a bounce for the bounce address from a remote MTA.

A bounce arrives from an arbitrary internet host with the null sender (``MAIL FROM:<>``).
smtpd accepts it only when

  - the bounce domain is one Postfix receives mail for: mydestination, a virtual alias or
    mailbox domain, or relay_domains -- otherwise ``reject_unauth_destination`` (in every
    default restriction list) answers ``454 4.7.1 Relay access denied``;
  - the address passes recipient validation for that class: relay_recipient_maps,
    local_recipient_maps, virtual_mailbox_maps -- otherwise ``550 5.1.1 User unknown``;
  - no restriction list stops it first: an unconditional ``reject``/``defer`` before any
    ``permit``, or a ``check_sender_access`` table with an action for the null sender's
    lookup key (``<>``, smtpd_null_access_lookup_key), or a ``check_recipient_access``
    one for the bounce address.

Restrictions that only apply to clients we cannot be (permit_mynetworks, SASL, TLS
certificates) and checks the null sender is exempt from (reject_unknown_sender_domain,
reject_non_fqdn_sender...) are passed over; restriction classes are not followed.
"""

from __future__ import annotations

from bounce_handler.doctor.findings import OK, PROBLEM, WARNING, Finding
from bounce_handler.doctor.postfix import Postconf

RESTRICTION_LISTS = (
    "smtpd_client_restrictions",
    "smtpd_helo_restrictions",
    "smtpd_sender_restrictions",
    "smtpd_relay_restrictions",
    "smtpd_recipient_restrictions",
    "smtpd_data_restrictions",
    "smtpd_end_of_data_restrictions",
)
# Lookup results that refuse or lose the message (access(5)).
REFUSING = ("REJECT", "DEFER", "DEFER_IF_PERMIT", "DEFER_IF_REJECT", "DISCARD", "HOLD")
# Entries after which a list says yes to a bounce for an accepted domain.
PERMITTING = ("permit", "permit_auth_destination")


def check_accepted(pc: Postconf, address: str) -> list[Finding]:
    """The domain class, recipient validation and the restriction lists, for one address."""
    local, _, domain = address.rpartition("@")
    findings: list[Finding] = []
    klass = None
    for param, name in (
        ("mydestination", "local"),
        ("virtual_alias_domains", "virtual alias"),
        ("virtual_mailbox_domains", "virtual mailbox"),
        ("relay_domains", "relay"),
    ):
        entry = pc.domain_listed(param, domain)
        if entry:
            klass = (param, name, entry)
            break
    if klass is None:
        current = pc.raw_param("relay_domains")
        value = (
            f"{current}, {domain}"
            if current
            else (f"{pc.param('relay_domains')}, {domain}".lstrip(", "))
        )
        findings.append(
            Finding(
                PROBLEM,
                f"{domain} is in neither relay_domains nor mydestination (nor a virtual "
                f"domain): remote MTAs get `454 4.7.1 <{address}>: Relay access denied`, "
                "every bounce is refused at the door",
                commands=[pc.set_param_command("relay_domains", value)],
                reload=True,
                check="accept.domain",
                subject=address,
            )
        )
        findings.extend(_restrictions(pc, address))
        return findings
    param, name, entry = klass
    findings.append(
        Finding(
            OK,
            f"{domain} is a {name} domain ({param} has {entry})",
            check="accept.domain",
            subject=address,
        )
    )
    findings.extend(_recipient_validation(pc, param, local, domain, address))
    findings.extend(_restrictions(pc, address))
    return findings


def _recipient_validation(pc, param, local, domain, address) -> list[Finding]:
    if param == "relay_domains":
        maps_param, keys = "relay_recipient_maps", [address, "@" + domain]
    elif param == "virtual_mailbox_domains":
        maps_param, keys = "virtual_mailbox_maps", [address, "@" + domain]
    elif param == "mydestination":
        maps_param, keys = "local_recipient_maps", [local, address]
    else:
        return [
            Finding(
                WARNING,
                f"{domain} is a virtual alias domain: the bounce address must be aliased in "
                "virtual_alias_maps to an address transport_maps sends to the handler; "
                "doctor does not follow virtual aliases",
                "route a relay domain to the handler instead (deploy/postfix/main.cf)",
                check="accept.recipient",
                subject=address,
            )
        ]
    tables = pc.list_param(maps_param)
    if not tables:
        return [
            Finding(
                OK,
                f"{maps_param} is empty: every {domain} recipient is accepted",
                check="accept.recipient",
                subject=address,
            )
        ]
    found = pc.lookup_maps(maps_param, keys)
    if found:
        return [
            Finding(
                OK,
                f"{maps_param}: {address} is a valid recipient ({found[0]})",
                check="accept.recipient",
                subject=address,
            )
        ]
    commands = None
    if maps_param != "local_recipient_maps":
        commands = pc.set_entry_commands(tables[0], address, "OK")
    return [
        Finding(
            PROBLEM,
            f"{address} is not in {maps_param}: remote MTAs get `550 5.1.1 <{address}>: "
            "Recipient address rejected: User unknown`, every bounce is refused",
            None
            if commands
            else (
                f"add `{address}  OK` to {tables[0]} (postmap it)"
                if maps_param != "local_recipient_maps"
                else f"add `{local}: root` to the aliases file and run newaliases "
                "(deploy/postfix/main.cf)"
            ),
            commands=commands,
            reload=True,
            check="accept.recipient",
            subject=address,
        )
    ]


def _restrictions(pc: Postconf, address: str) -> list[Finding]:
    """Walk each smtpd restriction list as it would run for a remote bounce."""
    domain = address.rpartition("@")[2]
    local = address.rpartition("@")[0]
    null_key = pc.param("smtpd_null_access_lookup_key") or "<>"
    findings: list[Finding] = []
    for param in RESTRICTION_LISTS:
        words = pc.list_param(param)
        i = 0
        while i < len(words):
            word = words[i]
            if word in PERMITTING:
                break
            if word in ("reject", "defer", "defer_if_permit"):
                findings.append(
                    Finding(
                        PROBLEM,
                        f"{param} reaches `{word}` before any permit a remote bounce "
                        f"matches: every bounce to {address} is refused",
                        f"put permit_auth_destination before `{word}` in {param} (or move "
                        "the bounce domain's mail ahead of it with check_recipient_access)",
                        check="accept.restrictions",
                        subject=address,
                    )
                )
                break
            if word in ("check_sender_access", "check_recipient_access") and i + 1 < len(words):
                table = words[i + 1]
                if word == "check_sender_access":
                    keys = [null_key]
                else:
                    keys = [address, domain, local + "@"]
                for key in keys:
                    action = pc.lookup(table, key)
                    if action and action.split()[0].upper().startswith(REFUSING + ("4", "5")):
                        commands = pc.set_entry_commands(table, key, None)
                        what = "the null sender" if key == null_key else address
                        findings.append(
                            Finding(
                                PROBLEM,
                                f"{param}: {word} {table} answers {action!r} for {key}: every "
                                f"bounce (from {what}) is refused or lost",
                                None if commands else f"remove {key} from {table}",
                                commands=commands,
                                reload=True,
                                check="accept.restrictions",
                                subject=address,
                            )
                        )
                i += 2
                continue
            i += 1
    if not findings:
        findings.append(
            Finding(
                OK,
                f"smtpd restrictions let a null-sender bounce to {address} through",
                check="accept.restrictions",
                subject=address,
            )
        )
    return findings
