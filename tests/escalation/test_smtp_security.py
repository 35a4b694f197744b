"""SmtpMailer against a real aiosmtpd on loopback: STARTTLS, implicit TLS, AUTH PLAIN/LOGIN, XOAUTH2, refusals."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from escalation.errors import MailError
from escalation.mailer import SmtpMailer, SmtpSettings
from tests.servers import _write_certificate
from tests.smtp_server import free_port

# The test certificate names localhost and IP:127.0.0.1; the client connects to the IP, so both must match.
HOST = "127.0.0.1"
USER = "vraagbaak@gemeente.example"
PASSWORD = "Pw-s3cret-not-in-errors"
TOKEN = "ya29.good-access-token"
WRONG_TOKEN = "ya29.expired-access-token"

# aiosmtpd warns on every SMTPS connection because of auth_require_tls=False (see implicit_tls_server).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 / localhost and its key."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """What the mail server presents."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this certificate (and still checks the host name)."""
        return ssl.create_default_context(cafile=str(self.cert))


@dataclass(frozen=True)
class OAuthGrant:
    """What the XOAUTH2 mechanism learnt; `login` is what aiosmtpd copies into session.login_data."""

    login: bytes


@dataclass
class Delivery:
    """One message as the server received it, with the identity the session authenticated as."""

    message: EmailMessage
    login: bytes | None


@dataclass
class RecordingHandler:
    """Records deliveries; implements XOAUTH2 the way Gmail / Exchange Online speak it."""

    challenge_on_failure: bool = False
    """True: refuse a token Gmail-style (334 with a JSON error, then 535 after the client's empty reply)."""
    received: list[Delivery] = field(default_factory=list)
    oauth_attempts: list[bytes] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        self.received.append(Delivery(message_from_bytes(envelope.original_content, policy=policy.default),
                                      session.login_data))
        return "250 OK"

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802 (aiosmtpd API)
        # aiosmtpd finds every `auth_<MECH>` on the handler, advertises MECH in EHLO and calls it with
        # the SMTP instance and the AUTH arguments ["XOAUTH2", "<base64 initial response>"].
        if len(args) != 2:
            await server.push("501 5.5.2 XOAUTH2 needs an initial response")
            return AuthResult(success=False, handled=True)
        try:
            raw = base64.b64decode(args[1], validate=True)
        except ValueError:
            await server.push("501 5.5.2 Can't decode base64")
            return AuthResult(success=False, handled=True)
        self.oauth_attempts.append(raw)
        fields = dict(part.split(b"=", 1) for part in raw.split(b"\x01") if b"=" in part)
        user, auth = fields.get(b"user"), fields.get(b"auth")
        if user == USER.encode() and auth == b"Bearer " + TOKEN.encode():
            return AuthResult(success=True, auth_data=OAuthGrant(login=user))
        if self.challenge_on_failure:
            error = b'{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}'
            await server.challenge_auth(error)  # the client must answer with an empty line
        return AuthResult(success=False, handled=False, message="535 5.7.8 Username and Password not accepted")


@dataclass
class PasswordCheck:
    """aiosmtpd authenticator for PLAIN / LOGIN: one known user and password; records the mechanisms used."""

    mechanisms: list[str] = field(default_factory=list)

    def __call__(self, server: SMTP, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        self.mechanisms.append(mechanism)
        if isinstance(auth_data, LoginPassword) and auth_data == (USER.encode(), PASSWORD.encode()):
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)


@dataclass
class RunningServer:
    """A listening aiosmtpd and what it saw."""

    port: int
    handler: RecordingHandler
    passwords: PasswordCheck

    @property
    def received(self) -> list[Delivery]:
        """Messages delivered so far."""
        return self.handler.received


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """One self-signed certificate for the whole module (openssl is the slow part)."""
    cert, key = _write_certificate(tmp_path_factory.mktemp("smtp-cert"))
    return Certificate(cert=cert, key=key)


@pytest.fixture
def start_server() -> Iterator[Any]:
    """Start aiosmtpd servers on free loopback ports; every one is stopped after the test."""
    controllers: list[Controller] = []

    def start(handler: RecordingHandler | None = None, **kwargs: Any) -> RunningServer:
        handler = handler or RecordingHandler()
        passwords = PasswordCheck()
        port = free_port()
        # Controller(port=0) cannot report the port it got: bind an explicit free one.
        controller = Controller(handler, hostname=HOST, port=port, authenticator=passwords, **kwargs)
        controller.start()
        controllers.append(controller)
        return RunningServer(port=port, handler=handler, passwords=passwords)

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def starttls_server(start_server: Any, certificate: Certificate) -> RunningServer:
    """Plain SMTP that offers STARTTLS and, only after it, AUTH PLAIN / LOGIN / XOAUTH2; AUTH is mandatory."""
    return start_server(tls_context=certificate.server_context(), require_starttls=True,
                        auth_required=True, auth_require_tls=True)


@pytest.fixture
def implicit_tls_server(start_server: Any, certificate: Certificate) -> RunningServer:
    """SMTPS: TLS from the first byte (Controller ssl_context), AUTH mandatory."""
    # aiosmtpd 1.4.6 only counts STARTTLS as "TLS" for auth_require_tls; here every byte is already encrypted.
    return start_server(ssl_context=certificate.server_context(), auth_required=True, auth_require_tls=False)


def _message(subject: str = "Vraag over de Aanbestedingswet") -> EmailMessage:
    message = EmailMessage()
    message["From"] = USER
    message["To"] = "expert@gemeente.example"
    message["Subject"] = subject
    message.set_content("Geldt artikel 2.32 ook voor een innovatiepartnerschap?\n")
    return message


def _mailer(port: int, context: ssl.SSLContext | None, **settings: Any) -> SmtpMailer:
    return SmtpMailer(SmtpSettings(host=HOST, port=port, timeout=5, **settings), ssl_context=context)


def _assert_delivered(server: RunningServer, subject: str, login: str) -> None:
    assert len(server.received) == 1
    delivery = server.received[0]
    assert delivery.message["Subject"] == subject
    assert "innovatiepartnerschap" in delivery.message.get_content()
    assert delivery.login == login.encode()


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_starttls_with_password_delivers_as_the_user(
        start_server: Any, certificate: Certificate, mechanism: str) -> None:
    # Offer one mechanism per run so both smtplib paths (PLAIN, LOGIN) are exercised.
    server = start_server(tls_context=certificate.server_context(), require_starttls=True, auth_required=True,
                          auth_exclude_mechanism=[{"PLAIN": "LOGIN", "LOGIN": "PLAIN"}[mechanism]])
    mailer = _mailer(server.port, certificate.client_context(), security="starttls", user=USER, password=PASSWORD)

    mailer.send(_message(f"STARTTLS {mechanism}"))

    _assert_delivered(server, f"STARTTLS {mechanism}", USER)
    assert server.passwords.mechanisms == [mechanism]


def test_wrong_password_is_a_mail_error_that_does_not_repeat_it(
        starttls_server: RunningServer, certificate: Certificate) -> None:
    wrong = "Wrong-pw-9f3a1c"
    mailer = _mailer(starttls_server.port, certificate.client_context(), security="starttls", user=USER, password=wrong)

    with pytest.raises(MailError) as caught:
        mailer.send(_message())

    assert "authentication failed" in str(caught.value)
    assert "535" in str(caught.value)
    assert wrong not in str(caught.value) and PASSWORD not in str(caught.value)
    assert caught.value.__cause__ is None
    assert starttls_server.passwords.mechanisms  # the server really checked (and refused) the password
    assert starttls_server.received == []


def test_password_is_never_offered_before_tls(starttls_server: RunningServer) -> None:
    # security="none" against a server that only allows AUTH after STARTTLS: refuse, do not send the password.
    mailer = _mailer(starttls_server.port, None, security="none", user=USER, password=PASSWORD)

    with pytest.raises(MailError) as caught:
        mailer.send(_message())

    assert PASSWORD not in str(caught.value)
    assert starttls_server.passwords.mechanisms == []
    assert starttls_server.received == []


def test_implicit_tls_with_password_delivers(implicit_tls_server: RunningServer, certificate: Certificate) -> None:
    mailer = _mailer(implicit_tls_server.port, certificate.client_context(),
                     security="tls", user=USER, password=PASSWORD)

    mailer.send(_message("SMTPS"))

    _assert_delivered(implicit_tls_server, "SMTPS", USER)


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_an_untrusted_certificate_is_refused_without_fallback(
        starttls_server: RunningServer, implicit_tls_server: RunningServer, security: str) -> None:
    server = {"starttls": starttls_server, "tls": implicit_tls_server}[security]
    # No ssl_context: the system trust store, which does not know the self-signed test certificate.
    mailer = _mailer(server.port, None, security=security, user=USER, password=PASSWORD)

    with pytest.raises(MailError) as caught:
        mailer.send(_message())

    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert server.passwords.mechanisms == []  # the password never left the client
    assert server.received == []


def test_starttls_demanded_but_not_offered_is_a_mail_error(start_server: Any) -> None:
    server = start_server()  # plain SMTP, no STARTTLS
    mailer = _mailer(server.port, None, security="starttls", user=USER, password=PASSWORD)

    with pytest.raises(MailError) as caught:
        mailer.send(_message())

    assert "STARTTLS" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert server.passwords.mechanisms == []
    assert server.received == []


def test_xoauth2_token_authenticates_and_delivers(starttls_server: RunningServer, certificate: Certificate) -> None:
    # The password is wrong on purpose: with a token set, XOAUTH2 is used instead of PLAIN / LOGIN.
    mailer = _mailer(starttls_server.port, certificate.client_context(), security="starttls",
                     user=USER, password="not-used", oauth_token=TOKEN)

    mailer.send(_message("XOAUTH2"))

    _assert_delivered(starttls_server, "XOAUTH2", USER)
    assert starttls_server.handler.oauth_attempts == [f"user={USER}\x01auth=Bearer {TOKEN}\x01\x01".encode()]
    assert starttls_server.passwords.mechanisms == []


def test_xoauth2_over_implicit_tls(implicit_tls_server: RunningServer, certificate: Certificate) -> None:
    mailer = _mailer(implicit_tls_server.port, certificate.client_context(), security="tls",
                     user=USER, oauth_token=TOKEN)

    mailer.send(_message("XOAUTH2 SMTPS"))

    _assert_delivered(implicit_tls_server, "XOAUTH2 SMTPS", USER)


@pytest.mark.parametrize("challenge_on_failure", [False, True], ids=["plain-535", "334-error-challenge"])
def test_wrong_xoauth2_token_is_a_mail_error_that_does_not_repeat_it(
        start_server: Any, certificate: Certificate, challenge_on_failure: bool) -> None:
    server = start_server(RecordingHandler(challenge_on_failure=challenge_on_failure),
                          tls_context=certificate.server_context(), require_starttls=True, auth_required=True)
    mailer = _mailer(server.port, certificate.client_context(), security="starttls",
                     user=USER, oauth_token=WRONG_TOKEN)

    with pytest.raises(MailError) as caught:
        mailer.send(_message())

    text = str(caught.value)
    assert "XOAUTH2 authentication refused" in text and "535" in text
    assert WRONG_TOKEN not in text and TOKEN not in text
    blob = base64.b64encode(f"user={USER}\x01auth=Bearer {WRONG_TOKEN}\x01\x01".encode()).decode()
    assert blob not in text
    assert len(server.handler.oauth_attempts) == 1
    assert server.received == []


def test_settings_name_the_missing_variable(tmp_path) -> None:
    from escalation.settings import EscalationConfigError, EscalationSettings

    with pytest.raises(EscalationConfigError, match="VRAAGBAAK_SMTP_USER"):
        EscalationSettings.from_env(tmp_path, {"VRAAGBAAK_SMTP_HOST": "smtp.example.be",
                                               "VRAAGBAAK_SMTP_OAUTH_TOKEN": "t"})
    with pytest.raises(EscalationConfigError, match="VRAAGBAAK_SMTP_PASSWORD"):
        EscalationSettings.from_env(tmp_path, {"VRAAGBAAK_SMTP_HOST": "smtp.example.be", "VRAAGBAAK_SMTP_USER": "u"})
    with pytest.raises(EscalationConfigError, match="VRAAGBAAK_IMAP_USER"):
        EscalationSettings.from_env(tmp_path, {"VRAAGBAAK_IMAP_HOST": "imap.example.be"})
    settings = EscalationSettings.from_env(tmp_path, {"VRAAGBAAK_SMTP_HOST": "smtp.example.be",
                                                      "VRAAGBAAK_SMTP_SECURITY": "tls"})
    assert settings.smtp.port == 465 and settings.database_url.startswith("sqlite:///")
