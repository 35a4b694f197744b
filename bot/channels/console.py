"""The console channel: `vraagbaak ask` and the interactive `vraagbaak chat` in a terminal."""

from __future__ import annotations

import getpass
from collections.abc import Callable, Sequence

from bot.core import HelpdeskService
from bot.messages import ActionKind, Decision, FileOffer, Incoming, Press, Reply
from bot.texts import (ANSWER_ARRIVES, BOT_SPEAKER, CONSOLE_WELCOME, FILES_HEADING, GOODBYE, NOTHING_TO_RATE,
                       OFFICER_PROMPT, SOURCES_HEADING)

CHANNEL = "console"
UP = {"👍", "+", "/goed", "/ja"}
DOWN = {"👎", "-", "/slecht", "/nee"}
QUIT = {"/stop", "/exit", "/quit", "exit", "quit"}


def render(reply: Reply) -> str:
    """A reply as terminal text: the answer, the numbered sources, then the files it hands out (their paths)."""
    parts = [reply.text]
    if reply.citations:
        parts.append(f"{SOURCES_HEADING}:\n" + "\n".join("  " + c.line() for c in reply.citations))
    if reply.files:
        parts.append(file_lines(reply.files))
    return "\n\n".join(parts)


def file_lines(files: Sequence[FileOffer]) -> str:
    """Files as the console shows them: the console runs where the files are, so their paths are the offer."""
    return f"{FILES_HEADING}:\n" + "\n".join(f"  {f.name} ({f.size_text}{', ' + f.note if f.note else ''}): {f.path}"
                                       for f in files)


def console_incoming(text: str, *, user: str | None = None) -> Incoming:
    """A console message: the local user is the officer, one conversation per user."""
    user = user or getpass.getuser()
    return Incoming(channel=CHANNEL, conversation_id=f"console:{user}", user_id=user, text=text, user_name=user,
                    reply_address={"user": user}, answer_arrives=ANSWER_ARRIVES)


class ConsoleChat:
    """A chat loop over injectable input/output, so tests can drive it like a person would."""

    def __init__(self, helpdesk: HelpdeskService, *, user: str | None = None,
                 pending: Callable[[Incoming], list[tuple[str, tuple[FileOffer, ...]]]] | None = None,
                 read: Callable[[str], str] = input, write: Callable[[str], None] = print) -> None:
        self.helpdesk = helpdesk
        self.user = user or getpass.getuser()
        self._read = read
        self._write = write
        self._pending = pending
        self.last_reply: Reply | None = None
        """The last reply that can take feedback (an answer)."""
        self.replies: list[Reply] = []

    def say(self, text: str) -> str:
        """Handle one line typed by the officer; returns what the console shows."""
        text = text.strip()
        if text in UP | DOWN:
            if self.last_reply is None or self.last_reply.decision is not Decision.ANSWER:
                return NOTHING_TO_RATE
            vote = Press(ActionKind.FEEDBACK_UP if text in UP else ActionKind.FEEDBACK_DOWN, self.last_reply.reply_id)
            return self.helpdesk.press(console_incoming(text, user=self.user), vote).text
        reply = self.helpdesk.handle(console_incoming(text, user=self.user))
        self.replies.append(reply)
        if reply.decision is Decision.ANSWER:
            self.last_reply = reply
        return render(reply)

    def pending_answers(self) -> list[str]:
        """Expert answers that arrived since the officer last opened the chat, with their files."""
        if self._pending is None:
            return []
        return [text + ("\n\n" + file_lines(files) if files else "")
                for text, files in self._pending(console_incoming("", user=self.user))]

    def run(self) -> None:
        """Read questions until /stop or end of input."""
        self._write(CONSOLE_WELCOME)
        for answer in self.pending_answers():
            self._write("\n" + BOT_SPEAKER + answer)
        while True:
            try:
                line = self._read("\n" + OFFICER_PROMPT)
            except (EOFError, KeyboardInterrupt):
                self._write("\n" + GOODBYE)
                return
            if line.strip().lower() in QUIT:
                self._write(GOODBYE)
                return
            if not line.strip():
                continue
            self._write("\n" + BOT_SPEAKER + self.say(line))
