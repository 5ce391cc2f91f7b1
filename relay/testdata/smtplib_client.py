"""Submit one message to relayctl serve the way many applications do:
Python's smtplib, STARTTLS, login, sendmail.

Settings come from the environment: RELAY_HOST, RELAY_PORT, RELAY_CA (PEM
file of the server's certificate), RELAY_USER, RELAY_PASSWORD, RELAY_FROM,
RELAY_TO. Exit status 0 means the message was accepted; otherwise the
reason is on standard error.
"""

import os
import smtplib
import ssl
import sys

env = os.environ
host, port = env["RELAY_HOST"], int(env["RELAY_PORT"])
sender, rcpt = env["RELAY_FROM"], env["RELAY_TO"]

# Bare LF line ends on purpose: smtplib turns them into CRLF.
message = (
    f"From: {sender}\n"
    f"To: {rcpt}\n"
    "Subject: from smtplib\n"
    "\n"
    "Sent by Python's smtplib.\n"
    ".A line that starts with a dot.\n"
)

with smtplib.SMTP(host, port, local_hostname="python.test", timeout=10) as s:
    s.ehlo()
    if s.has_extn("auth"):
        sys.exit("AUTH advertised before STARTTLS: " + s.esmtp_features["auth"])
    if not s.has_extn("starttls"):
        sys.exit("STARTTLS not advertised")
    s.starttls(context=ssl.create_default_context(cafile=env["RELAY_CA"]))
    s.ehlo()
    if not s.has_extn("auth"):
        sys.exit("AUTH not advertised after STARTTLS")
    s.login(env["RELAY_USER"], env["RELAY_PASSWORD"])
    refused = s.sendmail(sender, [rcpt], message)
    if refused:
        sys.exit(f"recipients refused: {refused}")
