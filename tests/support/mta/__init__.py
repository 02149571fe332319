"""Real MTAs (Postfix, Exim, OpenSMTPD, Sendmail, Courier, DMA) in private labs: genuine
notices.

lab.py      the namespaces, the cases, the captured notices
net.py      PID 1 of a lab: its DNS and the fake remote SMTP servers (a script)
drivers.py  the driver interface and run_all (every MTA through every case at once)
packages.py apt-get download + dpkg -x for the MTAs that are never installed
postfix.py, exim.py, opensmtpd.py, sendmail.py, courier.py,
dma.py  one driver per MTA
"""
