"""PNG and JPEG: decoded to pixels, quantised, and re-encoded with no metadata at all.

Low-order bits of pixels are a classic hiding place (LSB steganography), and so are the
colours of fully transparent pixels, extra animation frames, text chunks, EXIF/XMP, ICC
profiles and bytes after the end of the image.  The release is a fresh image built from the
first frame's pixels only, with each channel quantised to 16 levels (the four low bits of every
channel are recomputed, not copied: a pattern of 0 against 4 or 8 in a black area, invisible
to a checker, does not survive; charts are drawn in flat colours and lose nothing visible),
opacity made all-or-nothing (a pixel less than half opaque becomes transparent black: a nearly
invisible pixel cannot carry a colour), and nothing else written.
The checker's preview is that same re-encoded image.
"""

from __future__ import annotations

import io
import struct
import warnings

from PIL import Image

from countylab.airlock.render.model import Limits, Refused, Rendering, Section

_LEVELS = [round(round(v * 15 / 255) * 255 / 15) for v in range(256)]
_PNG_PIXEL_CHUNKS = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"sRGB", b"pHYs", b"cHRM"}
)


def png_extras(data: bytes) -> list[str]:
    """Chunks that are not pixels, and bytes after IEND (walked by length, never trusted)."""
    found: list[str] = []
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            keyword = data[pos + 8 : pos + 8 + min(length, 80)].split(b"\x00", 1)[0]
            found.append(f"{kind.decode('latin-1')}:{keyword.decode('latin-1')}")
        elif kind not in _PNG_PIXEL_CHUNKS:
            found.append(kind.decode("latin-1"))
        pos += 12 + length
        if kind == b"IEND":
            break
    if pos < len(data):
        found.append(f"{len(data) - pos} bytes after IEND")
    return found


def jpeg_extras(data: bytes) -> list[str]:
    found: list[str] = []
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in (0xD9, 0xDA):  # end of image / start of scan: metadata comes before
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if 0xE0 <= marker <= 0xEF:
            found.append(f"APP{marker - 0xE0}")
        elif marker == 0xFE:
            found.append("COM (comment)")
        pos += 2 + length
    return found


def _decode(data: bytes, limits: Limits) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.width * img.height > limits.max_pixels:
                raise Refused(
                    "image_pixels",
                    f"图片 {img.width}×{img.height} 像素，超过上限",
                    f"the image is {img.width}×{img.height} pixels, over the limit",
                )
            img.seek(0)
            img.load()
    except Refused:
        raise
    except Exception as exc:  # noqa: BLE001 - an image Pillow cannot decode does not leave
        raise Refused("image_undecodable", "无法解码图片", "the image cannot be decoded") from exc
    return img


def quantised(img: Image.Image, *, alpha: bool) -> Image.Image:
    """The first frame's pixels, each channel on 16 levels; opacity all or nothing."""
    has_alpha = alpha and (img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info)
    rgb = img.convert("RGBA" if has_alpha else "RGB")
    out = rgb.point(_LEVELS * len(rgb.getbands()))
    if has_alpha:
        # Opacity is shown or not: a pixel at alpha 4/255 is invisible on the page but would
        # carry its full colour (18 bits), and alpha 251 or 255 looks the same.  Pixels less
        # than half opaque become transparent black, the others fully opaque.
        mask = rgb.getchannel("A").point(lambda v: 255 if v >= 128 else 0, mode="1")
        black = Image.new("RGBA", out.size, (0, 0, 0, 0))
        out.putalpha(255)
        out = Image.composite(out, black, mask)
    return Image.frombytes(out.mode, out.size, out.tobytes())  # a fresh image: no info carried


def render_raster(data: bytes, limits: Limits, kind: str) -> Rendering:
    img = _decode(data, limits)
    extras = png_extras(data) if kind == "png" else jpeg_extras(data)
    frames = getattr(img, "n_frames", 1)
    fresh = quantised(img, alpha=kind == "png")
    out = io.BytesIO()
    if kind == "png":
        fresh.save(out, format="PNG")
    else:
        fresh.save(out, format="JPEG", quality=90)
    facts = Section("facts", "已删除的内容（不出域）", "Removed (not released)")
    facts.rows = [["metadata", e] for e in extras]
    if frames > 1:
        facts.rows.append(["frames", f"{frames - 1} frames after the first"])
    facts.rows.append(["pixels", f"{img.width}×{img.height}, 16 levels per channel"])
    image = Section("image", "图像（出域版本）", "Image (as released)")
    media = "image/png" if kind == "png" else "image/jpeg"
    return Rendering(kind, media, out.getvalue(), [image, facts])
