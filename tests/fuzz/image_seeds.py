#!/usr/bin/env python3
"""tests/fuzz/image_seeds.py -- writes the image harness's seed corpus.

usage: image_seeds.py DIR [IMAGE_DUMP]

Writes small JPEG and PNG files (each well under 4 KB) into DIR, the kept
corpus of tests/fuzz/fuzz_image.c (tests/fuzz/corpus/image/): JPEGs from
PIL (baseline 4:2:0 and 4:4:4, progressive, optimized, grayscale, CMYK, an
EXIF orientation) and, with IMAGE_DUMP (the
build's tests/image_dump), a YCCK and an arithmetic-coded one; PNGs from
PIL (RGB, RGBA, LA, palette with tRNS, 1-bit, 16-bit RGB, eXIf) and from
the PNG writer below where PIL has no option (grayscale 2/4/16 bits,
palettes of 1/2/4 bits and a short PLTE, Adam7 interlacing, the eXIf chunk
after IDAT, "Raw profile type exif" text, XMP orientation).  Deterministic:
the same bytes every run.
"""
import io
import os
import struct
import subprocess
import sys
import tempfile
import zlib

from PIL import Image


def picture(w, h, mode="RGB"):
    im = Image.new("RGB", (w, h))
    im.putdata([((x * 37) % 256, (y * 53) % 256, ((x + y) * 29) % 256) for y in range(h) for x in range(w)])
    return im.convert(mode) if mode != "RGB" else im


def exif_bytes(orientation, le=True, long=False):
    """A TIFF structure whose IFD0 holds Orientation (1 SHORT, or LONG)."""
    e = "<" if le else ">"
    head = (b"II" if le else b"MM") + struct.pack(e + "HI", 42, 8)
    value = struct.pack(e + "I", orientation) if long else struct.pack(e + "HH", orientation, 0)
    ifd = struct.pack(e + "H", 1) + struct.pack(e + "HHI", 0x0112, 4 if long else 3, 1) + value + struct.pack(e + "I", 0)
    return head + ifd


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png(rows, depth, ctype, plte=None, trns=None, interlace=False, before=(), after=()):
    """A PNG of rows (lists of samples, channels interleaved), filter 0."""
    h, w = len(rows), len(rows[0]) // {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    ch = len(rows[0]) // w

    def pack(samples):
        if depth == 16:
            return b"".join(struct.pack(">H", s) for s in samples)
        if depth == 8:
            return bytes(samples)
        per = 8 // depth
        out = bytearray()
        for i in range(0, len(samples), per):
            b = 0
            for j, s in enumerate(samples[i:i + per]):
                b |= s << (8 - depth * (j + 1))
            out.append(b)
        return bytes(out)

    raw = b""
    if not interlace:
        raw = b"".join(b"\0" + pack(r) for r in rows)
    else:
        for x0, y0, dx, dy in ADAM7:
            for y in range(y0, h, dy):
                sub = [s for x in range(x0, w, dx) for s in rows[y][x * ch:(x + 1) * ch]]
                if sub:
                    raw += b"\0" + pack(sub)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, int(interlace)))
    for c in before:
        out += c
    if plte is not None:
        out += chunk(b"PLTE", bytes(v for rgb in plte for v in rgb))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    out += chunk(b"IDAT", zlib.compress(raw, 9))
    for c in after:
        out += c
    return out + chunk(b"IEND", b"")


def grey_rows(w, h, depth, ch=1):
    top = (1 << depth) - 1
    return [[((x * 7 + y * 3 + c) * (top // 7 + 1)) % (top + 1) for x in range(w) for c in range(ch)] for y in range(h)]


def pil_bytes(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    seeds = {}
    rgb = picture(13, 9)
    # JPEG
    seeds["baseline.jpg"] = pil_bytes(rgb, "JPEG", quality=75)
    seeds["444.jpg"] = pil_bytes(rgb, "JPEG", quality=90, subsampling=0)
    seeds["progressive.jpg"] = pil_bytes(rgb, "JPEG", quality=75, progressive=True)
    seeds["optimized.jpg"] = pil_bytes(picture(20, 17), "JPEG", quality=60, optimize=True)
    seeds["gray.jpg"] = pil_bytes(picture(11, 7, "L"), "JPEG")
    seeds["gray_progressive.jpg"] = pil_bytes(picture(11, 7, "L"), "JPEG", progressive=True)
    seeds["cmyk.jpg"] = pil_bytes(picture(9, 6, "CMYK"), "JPEG")
    seeds["exif6.jpg"] = pil_bytes(rgb, "JPEG", exif=b"Exif\0\0" + exif_bytes(6))
    seeds["exif8_be.jpg"] = pil_bytes(picture(6, 10), "JPEG", exif=b"Exif\0\0" + exif_bytes(8, le=False))
    seeds["exif3_progressive.jpg"] = pil_bytes(picture(7, 5), "JPEG", progressive=True,
                                               exif=b"Exif\0\0" + exif_bytes(3))
    for o in (2, 4, 5, 7):
        seeds["exif%d_small.jpg" % o] = pil_bytes(picture(5, 3), "JPEG", quality=30,
                                                  exif=b"Exif\0\0" + exif_bytes(o, long=o == 7))
    seeds["one_pixel.jpg"] = pil_bytes(picture(1, 1), "JPEG")
    seeds["tall.jpg"] = pil_bytes(picture(2, 40), "JPEG", quality=50)
    # PNG through PIL
    seeds["rgb.png"] = pil_bytes(rgb, "PNG")
    seeds["rgba.png"] = pil_bytes(picture(10, 8, "RGBA"), "PNG")
    seeds["la.png"] = pil_bytes(picture(10, 8, "LA"), "PNG")
    pal = picture(12, 9).convert("P", palette=Image.ADAPTIVE, colors=16)
    seeds["palette_trns.png"] = pil_bytes(pal, "PNG", transparency=3)
    seeds["bilevel.png"] = pil_bytes(picture(17, 5, "1"), "PNG")
    seeds["exif6.png"] = pil_bytes(picture(8, 5), "PNG", exif=exif_bytes(6))
    seeds["rgb16.png"] = png([[(x * 4099 + y * 777 + c * 3001) % 65536 for x in range(6) for c in range(3)]
                              for y in range(4)], 16, 2)
    seeds["rgba16.png"] = png([[(x * 4099 + y * 777 + c * 3001) % 65536 for x in range(5) for c in range(4)]
                               for y in range(3)], 16, 6)
    # PNG through the writer above
    for d in (1, 2, 4, 8, 16):
        seeds["gray%d.png" % d] = png(grey_rows(11, 6, d), d, 0)
    seeds["gray16_alpha.png"] = png(grey_rows(5, 4, 16, 2), 16, 4)
    for d in (1, 2, 4, 8):
        n = 1 << d
        seeds["palette%d.png" % d] = png(grey_rows(9, 5, d), d, 3, plte=[(i * 40 % 256, i * 90 % 256, 255 - i)
                                                                         for i in range(n)])
    seeds["palette_short.png"] = png(grey_rows(9, 5, 4), 4, 3, plte=[(255, 0, 0), (0, 255, 0), (0, 0, 255)])
    seeds["interlaced_rgb.png"] = png([[(x * 31 + y * 17 + c * 80) % 256 for x in range(10) for c in range(3)]
                                       for y in range(9)], 8, 2, interlace=True)
    seeds["interlaced_gray2.png"] = png(grey_rows(9, 11, 2), 2, 0, interlace=True)
    seeds["interlaced_palette4.png"] = png(grey_rows(7, 6, 4), 4, 3, interlace=True,
                                           plte=[(i * 16, 255 - i * 16, 128) for i in range(16)])
    seeds["interlaced_1x1.png"] = png([[200, 100, 50]], 8, 2, interlace=True)
    seeds["exif_after_idat.png"] = png(grey_rows(6, 4, 8, 3), 8, 2, after=[chunk(b"eXIf", exif_bytes(8, le=False))])
    hexexif = (b"Exif\0\0" + exif_bytes(5)).hex().encode()
    seeds["raw_profile_exif.png"] = png(grey_rows(6, 4, 8, 3), 8, 2, before=[
        chunk(b"tEXt", b"Raw profile type exif\0\nexif\n      %d\n" % (len(hexexif) // 2) + hexexif + b"\n")])
    xmp = b'<x:xmpmeta><rdf:Description tiff:Orientation="7"/></x:xmpmeta>'
    seeds["xmp7.png"] = png(grey_rows(5, 3, 8, 3), 8, 2,
                            before=[chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp)])
    xmp = b"<x:xmpmeta><tiff:Orientation>2</tiff:Orientation></x:xmpmeta>"
    seeds["xmp2_element.png"] = png(grey_rows(4, 3, 8, 3), 8, 2,
                                    after=[chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp)])
    if len(sys.argv) > 2:  # JPEGs PIL cannot write, through the build's image_dump
        with tempfile.TemporaryDirectory() as t:
            src = os.path.join(t, "src.png")
            picture(12, 10).save(src)
            for kind in ("ycck", "arith"):
                dst = os.path.join(t, kind + ".jpg")
                subprocess.run([sys.argv[2], "--encode", kind, src, dst], check=True)
                with open(dst, "rb") as f:
                    seeds[kind + ".jpg"] = f.read()
    for name, data in sorted(seeds.items()):
        assert len(data) < 4096, (name, len(data))
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("%d seeds, %d bytes" % (len(seeds), sum(len(d) for d in seeds.values())))


if __name__ == "__main__":
    main()
