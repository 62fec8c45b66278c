"""A tiny SMTP server for tests: it takes every message and writes it to a folder.

Enough of RFC 5321 for :mod:`smtplib` (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT),
no TLS and no authentication. Run it as its own process so a test can start it late
or kill it::

    python -m ecshop.testing.smtp --port 2525 --dir /tmp/inbox
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from pathlib import Path

_counter = itertools.count(1)


class _Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 folder: Path) -> None:  # fmt: skip
        self.reader, self.writer, self.folder = reader, writer, folder

    async def reply(self, line: str) -> None:
        self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()

    async def data(self) -> None:
        await self.reply("354 end with <CRLF>.<CRLF>")
        lines = []
        while True:
            line = await self.reader.readline()
            if not line or line in (b".\r\n", b".\n"):
                break
            lines.append(line[1:] if line.startswith(b"..") else line)
        name = self.folder / f"{next(_counter):04d}.eml"
        partial = name.with_suffix(".partial")
        partial.write_bytes(b"".join(lines))
        partial.replace(name)
        await self.reply("250 queued")

    async def run(self) -> None:
        await self.reply("220 ecshop-test-smtp ready")
        while True:
            line = await self.reader.readline()
            if not line:
                return
            verb = line.decode("latin-1").strip().split(" ", 1)[0].upper()
            if verb == "QUIT":
                await self.reply("221 bye")
                return
            if verb == "DATA":
                await self.data()
            elif verb in ("EHLO", "HELO"):
                await self.reply("250 ecshop-test-smtp")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                await self.reply("250 ok")
            else:
                await self.reply("502 not implemented")


async def serve(port: int, folder: Path) -> None:
    """Serve on 127.0.0.1:``port`` until killed, writing messages into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _Session(reader, writer, folder).run()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="a test SMTP server writing .eml files")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.port, Path(args.dir)))


if __name__ == "__main__":
    main()
