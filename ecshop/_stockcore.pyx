# cython: language_level=3
"""Compiled stock core: the hot path of the stock engine.

Mirrors ``ecshop/_stockcore_py.py`` exactly (same API, same replies, same errors) and
takes its constants, errors and URL parsing from it. Where the twin goes through
redis-py, this module encodes RESP itself, writes one buffer per call and parses the
reply straight from its receive buffer, so a reserve costs one round trip and little
client CPU.
"""

import os
import socket
import struct
import weakref

from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcpy

from ecshop._redisurl import sentinel_for
from ecshop._stockcore_py import (
    EPOCH_KEY,
    MAX_LINES,
    MAX_QTY,
    MAX_SKU_LEN,
    LinkError,
    ReplyError,
    parse_redis_url,
    primary_of,
    script_sha,
)
from ecshop.errors import ValidationError

COMPILED = True

cdef Py_ssize_t BUF_SIZE = 65536


cpdef list canonicalize_lines(object lines):
    cdef dict merged = {}
    cdef object sku
    cdef object qty
    cdef object total
    for sku, qty in lines:
        if type(sku) is not str or not 0 < len(<str>sku) <= MAX_SKU_LEN:
            raise ValidationError(f"sku must be a string of 1 to {MAX_SKU_LEN} characters")
        if type(qty) is not int or qty <= 0:
            raise ValidationError(f"qty of {sku} must be a positive integer", sku=sku)
        total = merged.get(sku, 0) + qty
        if total > MAX_QTY:
            raise ValidationError(f"qty of {sku} is over the limit of {MAX_QTY}", sku=sku)
        merged[sku] = total
    if not merged:
        raise ValidationError("the cart has no lines")
    if len(merged) > MAX_LINES:
        raise ValidationError(f"the cart has more than {MAX_LINES} lines")
    return sorted(merged.items())


cdef inline bytes _as_bytes(object value):
    if type(value) is bytes:
        return <bytes>value
    if type(value) is str:
        return (<str>value).encode("utf-8")
    if type(value) is int:
        return str(value).encode("ascii")
    return str(value).encode("utf-8")


cdef inline void _put(bytearray out, bytes item):
    out += b"$"
    out += str(len(item)).encode("ascii")
    out += b"\r\n"
    out += item
    out += b"\r\n"


cdef class _Writer:
    """A growable C buffer that RESP is written into without Python objects per piece."""

    cdef char* data
    cdef Py_ssize_t size
    cdef Py_ssize_t cap

    def __cinit__(self):
        self.cap = 4096
        self.size = 0
        self.data = <char*>malloc(self.cap)
        if self.data == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.data)

    cdef int reserve_room(self, Py_ssize_t extra) except -1:
        cdef Py_ssize_t want = self.size + extra
        cdef char* grown
        if want <= self.cap:
            return 0
        while self.cap < want:
            self.cap *= 2
        grown = <char*>realloc(self.data, self.cap)
        if grown == NULL:
            raise MemoryError()
        self.data = grown
        return 0

    cdef inline void _int(self, long long value):
        cdef char digits[24]
        cdef int n = 0
        cdef bint negative = value < 0
        if negative:
            value = -value
        while True:
            digits[n] = <char>(48 + value % 10)
            n += 1
            value //= 10
            if value == 0:
                break
        if negative:
            self.data[self.size] = 45
            self.size += 1
        while n:
            n -= 1
            self.data[self.size] = digits[n]
            self.size += 1

    cdef int header(self, char kind, long long count) except -1:
        self.reserve_room(32)
        self.data[self.size] = kind
        self.size += 1
        self._int(count)
        self.data[self.size] = 13
        self.data[self.size + 1] = 10
        self.size += 2
        return 0

    cdef int bulk2(self, bytes head, bytes tail) except -1:
        """One bulk string made of two pieces (a key prefix and a name)."""
        cdef Py_ssize_t nh = PyBytes_GET_SIZE(head)
        cdef Py_ssize_t nt = PyBytes_GET_SIZE(tail)
        self.header(36, nh + nt)
        self.reserve_room(nh + nt + 2)
        memcpy(self.data + self.size, PyBytes_AS_STRING(head), nh)
        memcpy(self.data + self.size + nh, PyBytes_AS_STRING(tail), nt)
        self.size += nh + nt
        self.data[self.size] = 13
        self.data[self.size + 1] = 10
        self.size += 2
        return 0

    cdef int bulk_int(self, long long value) except -1:
        cdef char digits[24]
        cdef Py_ssize_t start
        self.reserve_room(64)
        # write the digits after a placeholder header, then the real header
        start = self.size
        self._int(value)
        n = self.size - start
        memcpy(digits, self.data + start, n)
        self.size = start
        self.header(36, n)
        memcpy(self.data + self.size, digits, n)
        self.size += n
        self.data[self.size] = 13
        self.data[self.size + 1] = 10
        self.size += 2
        return 0

    cdef bytes take(self):
        out = PyBytes_FromStringAndSize(self.data, self.size)
        self.size = 0
        return out


cdef bytes EMPTY = b""


cpdef bytes encode_command(object args):
    """One command in RESP: ``*<n>`` then each argument as a bulk string."""
    cdef bytearray out = bytearray(b"*")
    out += str(len(args)).encode("ascii")
    out += b"\r\n"
    for arg in args:
        _put(out, _as_bytes(arg))
    return bytes(out)


cdef class _Conn:
    """One socket to Redis with its receive buffer and RESP reader."""

    cdef object sock
    cdef object recv_into
    cdef object sendall
    cdef bytearray buf
    cdef Py_ssize_t pos
    cdef Py_ssize_t end

    def __init__(self, object sock):
        self.sock = sock
        self.recv_into = sock.recv_into
        self.sendall = sock.sendall
        self.buf = bytearray(BUF_SIZE)
        self.pos = 0
        self.end = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    cdef int _fill(self) except -1:
        cdef Py_ssize_t n, size
        if self.pos:
            if self.pos < self.end:
                self.buf[0:self.end - self.pos] = self.buf[self.pos:self.end]
            self.end -= self.pos
            self.pos = 0
        size = len(self.buf)
        if self.end == size:
            self.buf.extend(bytes(size))
        try:
            if self.end == 0:
                n = self.recv_into(self.buf)
            else:
                view = memoryview(self.buf)[self.end:]
                n = self.recv_into(view)
                view.release()
        except OSError as exc:
            raise LinkError(f"reading from Redis failed: {exc or 'timed out'}") from exc
        if n == 0:
            raise LinkError("Redis closed the connection")
        self.end += n
        return 0

    cdef Py_ssize_t _eol(self) except -1:
        """Index of the ``\\r`` that ends the line starting at ``pos``."""
        cdef char* base
        cdef char* hit
        while True:
            base = PyByteArray_AS_STRING(self.buf)
            if self.end > self.pos:
                hit = <char*>memchr(base + self.pos, 13, self.end - self.pos)
                if hit != NULL and (hit - base) + 1 < self.end:
                    return hit - base
            self._fill()

    cdef long long _int(self, Py_ssize_t start, Py_ssize_t stop) except? -1:
        cdef char* base = PyByteArray_AS_STRING(self.buf)
        cdef long long value = 0
        cdef bint negative = base[start] == 45  # '-'
        cdef Py_ssize_t i
        if negative:
            start += 1
        for i in range(start, stop):
            if not 48 <= base[i] <= 57:
                raise LinkError("malformed reply from Redis")
            value = value * 10 + (base[i] - 48)
        return -value if negative else value

    cdef object read(self):
        """Read one reply; an error reply is returned (not raised) as a ReplyError."""
        cdef Py_ssize_t eol = self._eol()
        cdef Py_ssize_t start = self.pos + 1
        cdef char kind = PyByteArray_AS_STRING(self.buf)[self.pos]
        cdef long long n
        cdef list items
        self.pos = eol + 2
        if kind == 58:  # ':'
            return self._int(start, eol)
        if kind == 36:  # '$'
            n = self._int(start, eol)
            if n < 0:
                return None
            while self.end - self.pos < n + 2:
                self._fill()
            data = PyBytes_FromStringAndSize(PyByteArray_AS_STRING(self.buf) + self.pos, n)
            self.pos += n + 2
            return data
        if kind == 42:  # '*'
            n = self._int(start, eol)
            if n < 0:
                return None
            items = []
            for _ in range(n):
                items.append(self.read())
            return items
        if kind == 43:  # '+'
            return bytes(self.buf[start:eol])
        if kind == 45:  # '-'
            return ReplyError(self.buf[start:eol].decode("utf-8", "replace"))
        raise LinkError("malformed reply from Redis")

    cdef object call(self, bytes request):
        try:
            self.sendall(request)
        except OSError as exc:
            raise LinkError(f"writing to Redis failed: {exc or 'timed out'}") from exc
        return self.read()


_links = weakref.WeakSet()


def _after_fork():
    # NOTE: a child must not share its parent's sockets: drop them, reconnect lazily.
    for link in list(_links):
        link._forget()


os.register_at_fork(after_in_child=_after_fork)


cdef inline object _raise_error(object reply):
    if isinstance(reply, ReplyError):
        raise reply
    if type(reply) is list:
        for item in reply:
            _raise_error(item)
    return reply


cdef inline object _primary_only(object reply):
    """A ``READONLY`` answer means the server is a replica now: a link failure."""
    if isinstance(reply, ReplyError) and str(reply).startswith("READONLY"):
        raise LinkError(f"the Redis server is a replica now: {reply}")
    return reply


cdef class StockLink:
    """A connection to Redis for the stock scripts, speaking RESP over a raw socket.

    Every new connection first runs the ``verify`` script, and a connection whose
    server turned replica (``READONLY``) is closed as a link failure, with every idle
    one; see the twin. Behind Sentinel each new connection goes to the primary that
    redis-py's ``Sentinel`` names at that moment.

    Args:
        url: ``redis://``, ``rediss://``, ``unix://`` or ``redis+sentinel://`` URL.
        prefix: key prefix with the hash tag, e.g. ``"ecshop:{stock}:"``.
        scripts: Lua sources by name (``reserve``, ``commit``, ..., and ``verify``).
        timeout: seconds to wait for a connection or a reply.
    """

    cdef readonly str prefix
    cdef object address
    cdef object sentinel
    cdef bytes verify_request
    cdef double timeout
    cdef list idle
    cdef dict sources
    cdef dict shas
    cdef bytes p_b, epoch_b, exp_b, h_b, s_b
    cdef _Writer writer
    cdef object __weakref__

    def __init__(self, str url, str prefix, object scripts, *, double timeout=5.0):
        self.address = parse_redis_url(url)
        self.prefix = prefix
        self.timeout = timeout
        self.idle = []
        self.sources = {name: src.encode("utf-8") for name, src in scripts.items()}
        self.shas = {name: script_sha(src).encode("ascii") for name, src in scripts.items()}
        self.p_b = prefix.encode("utf-8")
        self.epoch_b = self.p_b + EPOCH_KEY.encode("ascii")
        self.exp_b = self.p_b + b"exp"
        self.h_b = self.p_b + b"h:"
        self.s_b = self.p_b + b"s:"
        self.verify_request = encode_command([b"EVALSHA", self.shas["verify"], b"1", self.epoch_b])
        self.sentinel = sentinel_for(self.address, timeout) if self.address.service else None
        self.writer = _Writer()
        _links.add(self)

    def _forget(self):
        self.idle = []

    cdef _Conn _connect(self):
        a = self.address
        host, port = primary_of(self.sentinel, a.service) if a.service else (a.host, a.port)
        try:
            if a.path:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(a.path)
            else:
                sock = socket.create_connection((host, port), timeout=self.timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if a.tls:
                    import ssl

                    sock = ssl.create_default_context().wrap_socket(sock, server_hostname=a.host)
        except OSError as exc:
            raise LinkError(f"cannot connect to Redis: {exc}") from exc
        if not a.tls:
            # PERF: a blocking socket with kernel timeouts: Python's own timeout would
            # add a poll() before every recv.
            sock.settimeout(None)
            whole = int(self.timeout)
            tv = struct.pack("ll", whole, int((self.timeout - whole) * 1e6))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
        conn = _Conn(sock)
        try:
            if a.password:
                auth = [b"AUTH", a.username, a.password] if a.username else [b"AUTH", a.password]
                _raise_error(conn.call(encode_command(auth)))
            if a.db:
                _raise_error(conn.call(encode_command([b"SELECT", a.db])))
            self._verify(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    cdef _verify(self, _Conn conn):
        """``verify.lua`` on a new connection, before its first script."""
        reply = _primary_only(conn.call(self.verify_request))
        if isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT"):
            _raise_error(conn.call(encode_command([b"SCRIPT", b"LOAD", self.sources["verify"]])))
            reply = _primary_only(conn.call(self.verify_request))
        _raise_error(reply)

    cdef _drop_idle(self):
        idle, self.idle = self.idle, []
        for conn in idle:
            (<_Conn>conn).close()

    cdef object _roundtrip(self, bytes request):
        cdef _Conn conn
        try:
            conn = self.idle.pop()
        except IndexError:
            conn = self._connect()
        try:
            reply = _primary_only(conn.call(request))
        except LinkError:
            # NOTE: the server is gone or turned replica: the idle connections go too,
            # so the next call connects to the primary instead of failing once each.
            conn.close()
            self._drop_idle()
            raise
        except BaseException:
            conn.close()
            raise
        self.idle.append(conn)
        return reply

    def command(self, *args):
        """Send one command and return its parsed reply."""
        return _raise_error(self._roundtrip(encode_command(args)))

    cdef object _evalsha(self, str name, bytes request):
        reply = self._roundtrip(request)
        if isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT"):
            _raise_error(self._roundtrip(encode_command([b"SCRIPT", b"LOAD", self.sources[name]])))
            reply = self._roundtrip(request)
        return _raise_error(reply)

    def script(self, str name, object keys, object args):
        """Run a stock script by its SHA; load it first when Redis has not seen it."""
        cdef list command = [b"EVALSHA", self.shas[name], len(keys)]
        command.extend(keys)
        command.extend(args)
        return self._evalsha(name, encode_command(command))

    def reserve(self, str token, object lines, long long ttl_ms):
        """Canonicalize the cart and run the ``reserve`` script (see ``reserve.lua``)."""
        return self._evalsha("reserve", self.reserve_request(token, lines, ttl_ms))

    cpdef bytes reserve_request(self, str token, object lines, long long ttl_ms):
        """The RESP bytes of the reserve EVALSHA for this cart (what ``reserve`` sends)."""
        cdef list canon = canonicalize_lines(lines)
        cdef Py_ssize_t n = len(canon)
        cdef Py_ssize_t i
        cdef _Writer w = self.writer
        cdef list skus = [(<str>line[0]).encode("utf-8") for line in canon]
        cdef bytes token_b = token.encode("utf-8")
        w.size = 0
        w.header(42, 9 + 3 * n)
        w.bulk2(b"EVALSHA", EMPTY)
        w.bulk2(<bytes>self.shas["reserve"], EMPTY)
        w.bulk_int(3 + n)
        w.bulk2(self.epoch_b, EMPTY)
        w.bulk2(self.h_b, token_b)
        w.bulk2(self.exp_b, EMPTY)
        for i in range(n):
            w.bulk2(self.s_b, <bytes>skus[i])
        w.bulk2(self.p_b, EMPTY)
        w.bulk2(token_b, EMPTY)
        w.bulk_int(ttl_ms)
        for i in range(n):
            w.bulk2(<bytes>skus[i], EMPTY)
            w.bulk_int(<long long>(<tuple>canon[i])[1])
        return w.take()

    def hold_call(self, str name, str token, *extra):
        """Run a script on one hold: ``commit``, ``release`` or ``ship``."""
        cdef _Writer w = self.writer
        cdef bytes token_b = token.encode("utf-8")
        w.size = 0
        w.header(42, 8 + len(extra))
        w.bulk2(b"EVALSHA", EMPTY)
        w.bulk2(<bytes>self.shas[name], EMPTY)
        w.bulk2(b"3", EMPTY)
        w.bulk2(self.epoch_b, EMPTY)
        w.bulk2(self.h_b, token_b)
        w.bulk2(self.exp_b, EMPTY)
        w.bulk2(self.p_b, EMPTY)
        w.bulk2(token_b, EMPTY)
        for item in extra:
            w.bulk2(_as_bytes(item), EMPTY)
        return self._evalsha(name, w.take())

    def reconnect(self):
        """Close the idle connections: the next call connects again (behind Sentinel,
        to the primary it names by then)."""
        self._drop_idle()

    def close(self):
        self._drop_idle()
