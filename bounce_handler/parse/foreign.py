"""Mailer-daemon texts in other languages.

German, French, Spanish, Italian, Portuguese, Dutch, Polish, Russian, Japanese and Chinese
providers, and localised Exchange/qmail templates.

Matches intros such as::

    Ihre Nachricht konnte nicht zugestellt werden an folgende Empfänger:
    Votre message n'a pas pu être remis aux destinataires suivants :
    No se ha podido entregar el mensaje a los siguientes destinatarios:
    Il messaggio non è stato recapitato ai seguenti destinatari:
    A mensagem não pôde ser entregue aos seguintes destinatários:
    Uw bericht kon niet worden afgeleverd bij de volgende ontvangers:
    Ваше сообщение не может быть доставлено следующим адресатам:
    以下のアドレスへのメッセージの送信に失敗しました。
    邮件无法发送到以下地址 / 您发送的邮件未能送达以下收件人

followed by the failed addresses.
"""

from __future__ import annotations

from bounce_handler.parse.lazyre import I, lazy
from bounce_handler.parse.textbounce import TextBounce


class Foreign(TextBounce):
    """Non-English notices: address paragraphs after a localised intro line."""

    name = "foreign"
    needles = ("zugestellt", "unzustellbar", "pas pu être", "pas pu etre", "non remis",
               "no se ha podido", "no pudo ser entregado", "non è stato recapitato",
               "non e' stato recapitato", "não pôde ser entregue", "nao pode ser entregue",
               "niet worden afgeleverd", "не может быть доставлено", "не доставлено",
               "送信に失敗", "配信できません", "届きませんでした", "无法发送", "未能送达",
               "退信", "無法傳送", "nie został dostarczony", "nie mogła zostać dostarczona")
    start = lazy(
        r"(?:zugestellt werden|unzustellbar|pas pu [êe]tre (?:remis|distribu[ée]|d[ée]livr[ée])|"
        r"non remis|no se ha podido entregar|no pudo ser entregado|non [èe]'? ?stato "
        r"recapitato|n[ãa]o p[ôo]de ser entregue|niet worden afgeleverd|"
        r"не может быть доставлено|не доставлено|送信に失敗|配信できません|届きませんでした|"
        r"无法发送|未能送达|無法傳送|退信|nie (?:został|mogła zostać) dostarczon)[^\n]*\n",
        I,
    )
    inline = True
    delayed = lazy(r"verzögert|retard[ée]|retrasad|ritardat|atrasad|vertraagd|"
                         r"задерж", I)


DETECTOR = Foreign()
