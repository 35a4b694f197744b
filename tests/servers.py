"""Real servers on loopback for tests: a throwaway dovecot IMAP server (`imap_server`)."""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

HOST = "127.0.0.1"
_START_TIMEOUT = 15.0


@dataclass(frozen=True)
class ImapServer:
    """A running dovecot with one mail user; plain IMAP on `port`, implicit TLS on `tls_port`, STARTTLS on `port`."""

    host: str
    port: int
    tls_port: int
    user: str
    password: str
    ca_file: Path
    config: Path
    log: Path

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only this server's self-signed certificate."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    @contextmanager
    def _client(self) -> Iterator[imaplib.IMAP4]:
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            client.login(self.user, self.password)
            yield client
        finally:
            try:
                client.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    def append(self, raw: bytes, folder: str = "INBOX", *, flags: str | None = None) -> str:
        """Put one message into `folder` (server-side name) as the mail user; returns its UID there."""
        with self._client() as client:
            typ, data = client.append(_quote(folder), flags, None, raw)
            assert typ == "OK", data
            match = re.search(rb"APPENDUID \d+ (\d+)", data[0])
            assert match, data
            return match.group(1).decode()

    def list_folder(self, folder: str) -> list[bytes]:
        """The raw messages in `folder` (server-side name), oldest first, without marking them seen."""
        with self._client() as client:
            typ, data = client.select(_quote(folder), readonly=True)
            assert typ == "OK", data
            typ, data = client.uid("SEARCH", "ALL")
            assert typ == "OK", data
            uids = sorted(data[0].split(), key=int)
            messages = []
            for uid in uids:
                typ, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
                assert typ == "OK", data
                messages.extend(item[1] for item in data if isinstance(item, tuple))
            return messages

    def flags(self, folder: str) -> list[set[str]]:
        """The flags of each message in `folder`, oldest first."""
        with self._client() as client:
            typ, data = client.select(_quote(folder), readonly=True)
            assert typ == "OK", data
            if int(data[0]) == 0:
                return []
            typ, data = client.uid("FETCH", "1:*", "(FLAGS)")
            assert typ == "OK", data
            return [set(f.decode() for f in imaplib.ParseFlags(item)) for item in data if item]

    def folders(self) -> tuple[str, list[str]]:
        """The hierarchy delimiter and the names of all folders, as the server spells them."""
        with self._client() as client:
            typ, data = client.list()
            assert typ == "OK", data
            delimiter = ""
            names = []
            for line in data:
                match = re.match(rb'\((?P<flags>[^)]*)\) "(?P<delim>[^"]*)" (?P<name>.+)', line)
                assert match, line
                delimiter = match.group("delim").decode()
                names.append(match.group("name").decode().strip('"'))
            return delimiter, names

    def reset(self) -> None:
        """Empty INBOX and delete every other folder, so each test starts from a clean mailbox."""
        delimiter, names = self.folders()
        with self._client() as client:
            typ, data = client.select("INBOX")
            if int(data[0]) > 0:  # dovecot answers BAD to STORE 1:* on an empty folder
                client.store("1:*", "+FLAGS", r"(\Deleted)")
                client.expunge()
            client.close()
            # Children before parents, or dovecot refuses to delete the parent.
            for name in sorted((n for n in names if n != "INBOX"), key=lambda n: -n.count(delimiter)):
                typ, data = client.delete(_quote(name))
                # Deleting the last child also removes a \Noselect parent such as "Vraagbaak".
                assert typ == "OK" or b"NONEXISTENT" in data[0], (name, data)

    def kick(self) -> None:
        """Drop every open IMAP session of the mail user, as a server restart or idle timeout would."""
        subprocess.run(["doveadm", "-c", str(self.config), "kick", self.user],
                       check=True, capture_output=True, timeout=10)


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _mail_owner() -> tuple[str, str]:
    """User and group that own the maildir: dovecot refuses mail access as root, so root hands it to nobody."""
    if os.geteuid() == 0:
        return "nobody", grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
    return pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name


def _write_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30)
    return cert, key


def _config(*, run: Path, passwd: Path, cert: Path, key: Path, port: int, tls_port: int,
            separator: str | None) -> str:
    mail_user, mail_group = _mail_owner()
    root = os.geteuid() == 0
    internal_user = "dovecot" if root else mail_user
    internal_group = "dovecot" if root else mail_group
    login_user = "dovenull" if root else mail_user
    namespace_separator = f"  separator = {separator}\n" if separator else ""
    # As root, auth reads the passwd file inside pytest's root-only tmp dir, so it runs as root;
    # without root, dovecot cannot chroot or switch users, so everything runs as the current user.
    auth_user = "root" if root else mail_user
    login_chroot = "" if root else "  chroot =\n"
    anvil_chroot = login_chroot
    # dovecot 2.3 syntax (Debian 12). Nothing here touches the system's dovecot config, state or logs.
    return f"""\
protocols = imap
listen = {HOST}
instance_name = vraagbaak-test-{port}
base_dir = {run}/base
state_dir = {run}/state
log_path = {run}/dovecot.log
info_log_path = {run}/dovecot.log
auth_failure_delay = 0
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
mail_uid = {mail_user}
mail_gid = {mail_group}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {passwd}
}}
namespace inbox {{
  inbox = yes
{namespace_separator}}}
service imap-login {{
{login_chroot}  inet_listener imap {{
    address = {HOST}
    port = {port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {tls_port}
    ssl = yes
  }}
}}
service auth {{
  user = {auth_user}
}}
service anvil {{
{anvil_chroot}  # No auth penalty: after a wrong-password test every login from 127.0.0.1 would wait seconds.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def _wait_for_greeting(port: int, process: subprocess.Popen, run: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection((HOST, port), timeout=1) as sock:
                if sock.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.05)
    output = "".join(path.read_text(errors="replace")[-3000:]
                     for path in (run / "stdout.log", run / "dovecot.log") if path.exists())
    raise RuntimeError(f"dovecot did not start on {HOST}:{port}:\n{output or '(no output)'}")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()  # the master stops its children and exits; takes about a second
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def dovecot(directory: Path, *, separator: str | None = None) -> Iterator[ImapServer]:
    """Run a private dovecot in the foreground with its config, state and log under `directory`."""
    binary = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
    if binary is None:
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd); CI installs it")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    if not version.startswith("2.3."):
        pytest.skip(f"tests/servers.py writes a dovecot 2.3 config; found dovecot {version.strip()}")

    (directory / "base").mkdir(parents=True)
    (directory / "state").mkdir()
    cert, key = _write_certificate(directory)
    port = free_port()
    tls_port = free_port()
    while tls_port == port:
        tls_port = free_port()
    # The mail user (nobody under root) must reach its maildir, and pytest's tmp dirs are 0700 root-only:
    # keep the maildir in a traversable dir of its own, removed at the end.
    mail_root = Path(tempfile.mkdtemp(prefix="vraagbaak-imap-"))
    process = None
    try:
        mail_root.chmod(0o711)
        home = mail_root / "experts"
        home.mkdir()
        shutil.chown(home, *_mail_owner())
        user, password = "experts@example.org", secrets.token_urlsafe(18)
        passwd = directory / "passwd"
        passwd.write_text(f"{user}:{{PLAIN}}{password}::::{home}::\n")
        passwd.chmod(0o600)
        config = directory / "dovecot.conf"
        config.write_text(_config(run=directory, passwd=passwd, cert=cert, key=key,
                                  port=port, tls_port=tls_port, separator=separator))
        with open(directory / "stdout.log", "wb") as stdout:
            process = subprocess.Popen([binary, "-F", "-c", str(config)], stdin=subprocess.DEVNULL,
                                       stdout=stdout, stderr=subprocess.STDOUT)
        _wait_for_greeting(port, process, directory)
        yield ImapServer(host=HOST, port=port, tls_port=tls_port, user=user, password=password,
                         ca_file=cert, config=config, log=directory / "dovecot.log")
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(mail_root, ignore_errors=True)


@pytest.fixture(scope="session")
def imap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImapServer]:
    """One dovecot for the whole session, with dovecot's default hierarchy delimiter for maildir ('.')."""
    with dovecot(tmp_path_factory.mktemp("dovecot")) as server:
        yield server
