"""Image bytes and request helpers shared by the reliability/security integration tests.

Everything is generated here (no fixture files): small valid images, and hostile ones built
byte by byte (headers that lie about their size, truncated streams, animated GIFs).
"""

from __future__ import annotations

import base64
import io
import socket
import struct
import time
import zlib

import numpy as np
from PIL import Image


def png_bytes(width: int = 16, height: int = 16, color: tuple[int, int, int] = (200, 30, 90)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def noise_jpeg(width: int = 48, height: int = 48, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int, with_data: bool = False) -> bytes:
    """A syntactically valid PNG whose IHDR claims width x height (no real pixels behind it)."""
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    data = _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) if with_data else b""
    return b"\x89PNG\r\n\x1a\n" + header + data + _png_chunk(b"IEND", b"")


def gif_claiming(width: int, height: int) -> bytes:
    screen = b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00"
    return screen + b"\x2c" + struct.pack("<HHHH", 0, 0, width, height) + b"\x00\x02\x02\x44\x01\x00\x3b"


def bmp_claiming(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 0, 0, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + info


def animated_gif(colors: tuple[tuple[int, int, int], ...] = ((255, 0, 0), (0, 255, 0), (0, 0, 255))) -> bytes:
    frames = [Image.new("RGB", (16, 16), c) for c in colors]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return out.getvalue()


def still_gif(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(out, "GIF")
    return out.getvalue()


def float_tiff_with_nan() -> bytes:
    """Mode 'F' TIFF holding NaN and +-inf samples."""
    values = np.array([[np.nan, np.inf, -np.inf, 1.0]] * 4, dtype=np.float32)
    out = io.BytesIO()
    Image.fromarray(values, mode="F").save(out, "TIFF")
    return out.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="red"/></svg>'


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image(data: bytes) -> dict[str, str]:
    return {"type": "base64", "value": b64(data)}


def raw_http(
    port: int,
    head: bytes,
    body_parts: list[bytes] | tuple[bytes, ...] = (),
    timeout_s: float = 10.0,
    pause_s: float = 0.0,
) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes (for requests a client library won't build) and parse one response.

    Returns (status, lower-cased headers, body). Write errors after the server has answered
    (it may refuse before reading the whole body) are ignored; the answer is still read.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(head)
        try:
            for part in body_parts:
                sock.sendall(part)
                if pause_s:
                    time.sleep(pause_s)
        except OSError:
            pass
        data = b""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
            head_bytes, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                headers = _parse_headers(head_bytes)
                if len(rest) >= int(headers.get("content-length", "0")):
                    break
    head_bytes, _, rest = data.partition(b"\r\n\r\n")
    if not head_bytes:
        raise AssertionError("no HTTP response received")
    status = int(head_bytes.split(b" ", 2)[1])
    headers = _parse_headers(head_bytes)
    return status, headers, rest[: int(headers.get("content-length", len(rest)))]


def _parse_headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines if ":" in line)}
