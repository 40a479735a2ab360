"""`Image`: a picture attached to a message, as bytes with a media type or as a URL.

Providers send it in their own form (a `data:` URL, a base64 block, inlineData, a bare
base64 string); this module only holds the picture and checks it before anything is sent:
a type every provider reads (PNG, JPEG, GIF, WebP, told by the file's own first bytes) and
a size no provider refuses outright. Pillow and matplotlib are optional: `from_pil` and
`from_figure` take their objects without importing them.
"""

from __future__ import annotations

import base64
import binascii
import io
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

from .errors import ConfigurationError

__all__ = ["MAX_IMAGE_BYTES", "MEDIA_TYPES", "Image", "ImageError"]

#: The image types all five providers accept.
MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
#: The largest image sent inline (the strictest documented per-image limit, Anthropic's).
MAX_IMAGE_BYTES = 5 * 1024 * 1024

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


class ImageError(ConfigurationError, ValueError):
    """An image that cannot be sent: unknown type, too large, unreadable."""


def sniff(data: bytes) -> str | None:
    """The media type that the bytes themselves announce, or None."""
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _check_type(media_type: str, what: str) -> str:
    media_type = media_type.strip().lower()
    if media_type == "image/jpg":
        media_type = "image/jpeg"
    if media_type not in MEDIA_TYPES:
        raise ImageError(
            f"{what} is of type {media_type!r}, which not every provider reads. "
            f"Convert it to one of {', '.join(MEDIA_TYPES)} (e.g. with Pillow: "
            "img.save(path, 'PNG')) and attach that."
        )
    return media_type


@dataclass(frozen=True, slots=True, repr=False)
class Image:
    """A picture for a message part. Build it with one of the `from_*` constructors."""

    data: bytes | None
    media_type: str
    url: str | None = None

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str | None = None) -> Image:
        """Raw image bytes; media_type is read from the bytes when not given."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ImageError(
                f"Image.from_bytes needs bytes, got {type(data).__name__}. Pass the file's "
                "contents (open(path, 'rb').read()) or use Image.from_path(path)."
            )
        data = bytes(data)
        if not data:
            raise ImageError("the image is empty (0 bytes); attach a real image file.")
        if len(data) > MAX_IMAGE_BYTES:
            raise ImageError(
                f"the image is {len(data) / 1e6:.1f} MB; providers refuse images over "
                f"{MAX_IMAGE_BYTES / 1e6:.1f} MB. Scale it down (or save it as JPEG) and "
                "attach that."
            )
        found = sniff(data)
        if media_type is None:
            if found is None:
                raise ImageError(
                    "these bytes are not a PNG, JPEG, GIF or WebP image (the first bytes "
                    "say so); convert the picture to PNG and attach that."
                )
            media_type = found
        media_type = _check_type(media_type, "the image")
        if found is not None and found != media_type:
            raise ImageError(
                f"the image was declared {media_type!r} but its bytes are {found!r}; pass "
                f"media_type={found!r} (or leave it out to have it detected)."
            )
        return cls(data, media_type)

    @classmethod
    def from_path(cls, path: str | Path) -> Image:
        """An image file; its type is read from its bytes (then from its extension)."""
        p = Path(path).expanduser()
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise ImageError(
                f"cannot read the image file {str(p)!r} ({exc.strerror or exc}); check the path."
            ) from exc
        guess = None if sniff(data) else mimetypes.guess_type(p.name)[0]
        return cls.from_bytes(data, guess)

    @classmethod
    def from_url(cls, url: str, media_type: str | None = None) -> Image:
        """An http(s) URL the provider fetches itself, or a `data:` URL (decoded here)."""
        if not isinstance(url, str):
            raise ImageError(f"Image.from_url needs a string, got {type(url).__name__}.")
        if url.startswith("data:"):
            head, sep, payload = url[5:].partition(",")
            if not sep:
                raise ImageError("the data: URL has no ',' before its payload.")
            declared, _, encoding = head.partition(";")
            try:
                raw = (
                    base64.b64decode(payload, validate=True)
                    if encoding == "base64"
                    else unquote_to_bytes(payload)
                )
            except (binascii.Error, ValueError) as exc:
                raise ImageError("the data: URL's base64 payload is not valid.") from exc
            return cls.from_bytes(raw, media_type or declared or None)
        if not url.startswith(("http://", "https://")):
            raise ImageError(
                f"Image.from_url takes an http(s) or data: URL, got {url[:40]!r}; for a "
                "local file use Image.from_path."
            )
        guess = media_type or mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"
        return cls(None, _check_type(guess, "the image at the URL"), url)

    @classmethod
    def from_pil(cls, img: Any, format: str = "PNG") -> Image:
        """A Pillow image, saved as PNG (or `format`)."""
        save = getattr(img, "save", None)
        if save is None:
            raise ImageError(f"Image.from_pil needs a PIL.Image, got {type(img).__name__}.")
        buf = io.BytesIO()
        save(buf, format=format)
        return cls.from_bytes(buf.getvalue())

    @classmethod
    def from_figure(cls, fig: Any, dpi: float | None = None) -> Image:
        """A matplotlib Figure (or anything with savefig), rendered as PNG."""
        savefig = getattr(fig, "savefig", None)
        if savefig is None and hasattr(fig, "get_figure"):
            savefig = getattr(fig.get_figure(), "savefig", None)  # an Axes
        if savefig is None:
            raise ImageError(
                f"Image.from_figure needs a matplotlib Figure, got {type(fig).__name__}."
            )
        buf = io.BytesIO()
        kwargs: dict[str, Any] = {"format": "png", "bbox_inches": "tight"}
        if dpi is not None:
            kwargs["dpi"] = dpi
        savefig(buf, **kwargs)
        return cls.from_bytes(buf.getvalue(), "image/png")

    @classmethod
    def of(cls, value: Any) -> Image:
        """Whatever a notebook has at hand as an Image: an Image, bytes, a path or URL, a
        matplotlib Figure or Axes, or a Pillow image."""
        if isinstance(value, Image):
            return value
        if isinstance(value, bytes | bytearray | memoryview):
            return cls.from_bytes(bytes(value))
        if isinstance(value, str) and value.startswith(("http://", "https://", "data:")):
            return cls.from_url(value)
        if isinstance(value, str | Path):
            return cls.from_path(value)
        if hasattr(value, "savefig") or hasattr(value, "get_figure"):
            return cls.from_figure(value)
        if hasattr(value, "save"):
            return cls.from_pil(value)
        raise ImageError(
            f"cannot make an image of a {type(value).__name__}; give a path, bytes, a URL, a "
            "matplotlib Figure, a PIL image or an n3_notebook.Image."
        )

    @property
    def base64(self) -> str:
        """The bytes, base64-encoded (an error for a URL image)."""
        if self.data is None:
            raise ImageError(
                f"this provider needs the image's bytes, but it was given as a URL "
                f"({self.url}); download it and use Image.from_bytes or Image.from_path."
            )
        return base64.b64encode(self.data).decode("ascii")

    @property
    def data_url(self) -> str:
        """A `data:` URL of the bytes, or the http(s) URL as given."""
        if self.data is None:
            assert self.url is not None
            return self.url
        return f"data:{self.media_type};base64,{self.base64}"

    def __repr__(self) -> str:
        if self.data is None:
            return f"Image(url={self.url!r}, media_type={self.media_type!r})"
        return f"Image({self.media_type}, {len(self.data)} bytes)"
