"""e2e: the image library (runtime/image.c) against Debian's python3-pil +
numpy.

Takes: the path of mambac (argv[1]); image_dump (tests/unit/image_dump.c)
is found beside it, in tests/.  Generates with PIL (and, for what PIL cannot
write, a small PNG writer here -- 16-bit colour, palettes shorter than
their indices, interlacing, chunks after the pixels -- and image_dump
--encode: YCCK and arithmetic-coded JPEGs) JPEG and PNG files of
sizes 1x1 to 600x400 in every mode the library handles, and compares:
  - the decoded image with ImageOps.exif_transpose(Image.open(p))
    .convert("RGB"): equal (16-bit grayscale: its high byte, where PIL's
    I -> RGB clips at 255: the one documented difference);
  - the public evaluation transform computed with PIL and numpy (not
    torchvision): Resize(int(S / 0.875)) as torchvision's Resize(int) sizes
    it, CenterCrop (zero padding, int(round(d / 2.0)) offsets), ToTensor,
    Normalize -- the 8-bit image within 1 level (the maximum is reported;
    it is 0), the normalized tensor within 1e-6 of numpy's;
  - refusals (GIF, BMP, truncated JPEG and PNG, empty file, directory,
    header dimensions over the pixel limit, garbage after a signature):
    exit status 1, one line naming the file, no crash.
"""
import io
import os
import struct
import sys
import zlib

import e2e_common as E
import numpy as np
from PIL import Image, ImageOps, PngImagePlugin

t = E.Test("image_preproc")
DUMP = os.path.join(os.path.dirname(t.mambac), "tests", "image_dump")
if not os.path.exists(DUMP):
    t.check(False, "image_dump not built (expected at %s)" % DUMP)
    t.finish()
rc, _, err, _ = E.run_prog([DUMP, "--size", "8", t.path("none.png"), t.path("o")])
if "no image support" in err:
    print("SKIP: this build has no image support (libjpeg/libpng not found)")
    sys.exit(77)

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
FILTERS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
rs = np.random.RandomState(7)
stats = {"u8": 0, "f32": 0.0, "f32_vs_pil": 0.0, "images": 0, "transforms": 0}


def picture(h, w):
    """Smooth colour gradients plus noise (JPEG-like content), uint8 [h,w,3]."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    a = np.stack([128 + 110 * np.sin(x / (3 + 5 * c) + c) * np.cos(y / (4 + 3 * c) + 2 * c)
                  for c in range(3)], -1)
    a += rs.randn(h, w, 3) * 18
    return np.clip(a, 0, 255).astype(np.uint8)


# ------------------------------------------------------------ a PNG writer
def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def png_rows(samples, depth):
    """Filter-0 scanlines of samples [h, w, c] at depth bits."""
    out = b""
    for row in samples:
        flat = row.reshape(-1).astype(np.uint32)
        if depth == 16:
            out += b"\0" + flat.astype(">u2").tobytes()
        elif depth == 8:
            out += b"\0" + flat.astype(np.uint8).tobytes()
        else:
            per = 8 // depth
            pad = (-len(flat)) % per
            flat = np.concatenate([flat, np.zeros(pad, np.uint32)]).reshape(-1, per)
            packed = np.zeros(len(flat), np.uint32)
            for i in range(per):
                packed |= flat[:, i] << (8 - depth * (i + 1))
            out += b"\0" + packed.astype(np.uint8).tobytes()
    return out


def write_png(path, samples, depth, ctype, plte=None, trns=None, interlace=False, before=(), after=(),
              iend=True):
    h, w = samples.shape[:2]
    data = b""
    if interlace:
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                data += png_rows(sub, depth)
    else:
        data = png_rows(samples, depth)
    blob = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0,
                                                                   1 if interlace else 0))
    for k, v in before:
        blob += png_chunk(k, v)
    if plte is not None:
        blob += png_chunk(b"PLTE", bytes(np.asarray(plte, np.uint8).reshape(-1)))
    if trns is not None:
        blob += png_chunk(b"tRNS", trns)
    blob += png_chunk(b"IDAT", zlib.compress(data))
    for k, v in after:
        blob += png_chunk(k, v)
    if iend:
        blob += png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(blob)


def exif_bytes(o, big_endian=False):
    if big_endian:
        return b"MM\0*" + struct.pack(">IHHHIHH", 8, 1, 0x0112, 3, 1, o, 0) + b"\0\0\0\0"
    e = Image.Exif()
    e[0x0112] = o
    return e.tobytes()[6:] if e.tobytes().startswith(b"Exif\0\0") else e.tobytes()


# ------------------------------------------------------------ the reference
def pil_decode(path):
    return np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))


def pil_transform(rgb, H, W, crop, interp, crop_pct=0.875):
    """The public transform with PIL and numpy: uint8 [H, W, 3]."""
    im = Image.fromarray(rgb)
    f = FILTERS[interp]
    if not crop:
        return np.asarray(im.resize((W, H), f))
    s = int(min(H, W) / crop_pct)
    w, h = im.size
    ow, oh = (s, int(s * h / w)) if w <= h else (int(s * w / h), s)
    a = np.asarray(im.resize((ow, oh), f))
    ph, pw = max(H - oh, 0), max(W - ow, 0)
    a = np.pad(a, ((ph // 2, (ph + 1) // 2), (pw // 2, (pw + 1) // 2), (0, 0)))
    top, left = int(round((a.shape[0] - H) / 2.0)), int(round((a.shape[1] - W) / 2.0))
    return a[top:top + H, left:left + W]


def normalize(u8):
    x = u8.astype(np.float32).transpose(2, 0, 1) / np.float32(255)
    return (x - MEAN[:, None, None]) / STD[:, None, None]


TRANSFORMS = (
    (224, 224, True, "bicubic"),      # the public default
    (64, 48, True, "bilinear"),
    (37, 53, False, "bicubic"),
    (16, 16, True, "nearest"),
    (300, 280, False, "bilinear"),
)


def check_image(label, path, want_dec=None, transforms=TRANSFORMS[:2]):
    """Decodes path with image_dump under each transform; compares."""
    want = pil_decode(path) if want_dec is None else want_dec
    problems = []
    for k, (H, W, crop, interp) in enumerate(transforms):
        args = [DUMP, "--size", "%dx%d" % (H, W), "--interp", interp] + ([] if crop else ["--no-crop"])
        prefix = t.path("o")
        rc, _, err, _ = E.run_prog(args + [path, prefix])
        if rc != 0:
            problems.append("image_dump rc=%s: %s" % (rc, err.strip()[:300]))
            break
        if k == 0:
            dec = np.load(prefix + ".dec.npy")
            if dec.shape != want.shape:
                problems.append("decoded shape %s, PIL %s" % (dec.shape, want.shape))
                break
            if not (dec == want).all():
                problems.append("decoded pixels differ from PIL's (max %d, %d values)" % (
                    np.abs(dec - want).max(), int((dec != want).sum())))
        u8 = np.load(prefix + ".u8.npy")
        x = np.load(prefix + ".f32.npy")
        ref = pil_transform(want, H, W, crop, interp)
        d = int(np.abs(u8 - ref.astype(np.float32)).max()) if u8.shape == ref.shape else 999
        dn = float(np.abs(x - normalize(u8.astype(np.uint8))).max())
        dp = float(np.abs(x - normalize(ref)).max())
        stats["u8"] = max(stats["u8"], d)
        stats["f32"] = max(stats["f32"], dn)
        stats["f32_vs_pil"] = max(stats["f32_vs_pil"], dp)
        stats["transforms"] += 1
        if d > 1 or dn > 1e-6:
            problems.append("%dx%d crop=%s %s: max |u8 - PIL| %d, max |x - numpy| %.3g" % (
                H, W, crop, interp, d, dn))
    stats["images"] += 1
    t.check(not problems, "%s (%s, %dx%d): %s" % (label, os.path.basename(path), want.shape[1], want.shape[0],
                                                 "; ".join(problems) if problems else "equal to PIL"))


SIZES = [(1, 1), (1, 9), (7, 1), (2, 3), (5, 7), (16, 16), (31, 17), (17, 31), (64, 48), (97, 131),
         (131, 97), (224, 224), (255, 257), (300, 200), (401, 299), (400, 600), (600, 400)]

# ------------------------------------------------------------ JPEG
for i, (h, w) in enumerate(SIZES):
    a = picture(h, w)
    im = Image.fromarray(a)
    kinds = [("baseline 4:2:0", dict(quality=85)), ("4:4:4", dict(quality=95, subsampling=0)),
             ("4:2:2", dict(quality=90, subsampling=1)), ("progressive", dict(quality=80, progressive=True))]
    for name, kw in kinds[i % 2::2] if h * w > 1000 else kinds:
        p = t.path("j%d_%s.jpg" % (i, name.split()[0].replace(":", "")))
        im.save(p, "JPEG", **kw)
        check_image("JPEG %s" % name, p, transforms=TRANSFORMS[:2] if i % 3 else TRANSFORMS)
    p = t.path("j%d_gray.jpg" % i)
    im.convert("L").save(p, "JPEG", quality=90)
    check_image("JPEG grayscale", p)
    if i % 2 == 0:
        p = t.path("j%d_cmyk.jpg" % i)
        im.convert("CMYK").save(p, "JPEG", quality=90)
        check_image("JPEG CMYK (Adobe, inverted)", p)
        src, p = t.path("j%d_src.png" % i), t.path("j%d_ycck.jpg" % i)
        im.save(src)
        rc, _, err, _ = E.run_prog([DUMP, "--encode", "ycck", src, p])
        if t.check(rc == 0 and Image.open(p).info.get("adobe_transform") == 2, "YCCK JPEG written (%s)" % err.strip()):
            check_image("JPEG YCCK (Adobe transform 2)", p)
    else:
        # PIL 9.4 reads an arithmetic-coded JPEG only when it fits its read
        # buffer (libjpeg's arithmetic decoder cannot suspend: "broken data
        # stream"); the same JPEG Huffman-coded decodes to the same pixels
        src, p, ph = t.path("j%d_src.png" % i), t.path("j%d_arith.jpg" % i), t.path("j%d_huff.jpg" % i)
        im.save(src)
        rc, _, err, _ = E.run_prog([DUMP, "--encode", "arith", src, p])
        rc2, _, err2, _ = E.run_prog([DUMP, "--encode", "huffman", src, ph])
        if t.check(rc == 0 and rc2 == 0 and b"\xff\xc9" in open(p, "rb").read(),
                   "arithmetic-coded JPEG written (%s%s)" % (err.strip(), err2.strip())):
            check_image("JPEG arithmetic-coded (vs PIL on it Huffman-coded)", p, want_dec=pil_decode(ph))

# EXIF orientations 1..8, little- and big-endian TIFF
a = picture(37, 61)
for o in range(1, 9):
    for big in (False, True):
        p = t.path("exif%d%s.jpg" % (o, "mm" if big else ""))
        Image.fromarray(a).save(p, "JPEG", quality=92, exif=b"Exif\0\0" + exif_bytes(o, big))
        check_image("JPEG EXIF orientation %d (%s)" % (o, "MM" if big else "II"), p, transforms=TRANSFORMS[1:3])
        p = t.path("exif%d%s.png" % (o, "mm" if big else ""))
        write_png(p, a, 8, 2, before=[(b"eXIf", exif_bytes(o, big))])
        check_image("PNG eXIf orientation %d (%s)" % (o, "MM" if big else "II"), p, transforms=TRANSFORMS[1:3])
# EXIF after the pixels; ImageMagick's raw-profile text; XMP
p = t.path("exif_after.png")
write_png(p, a, 8, 2, after=[(b"eXIf", exif_bytes(6))])
check_image("PNG eXIf orientation 6 after IDAT", p, transforms=TRANSFORMS[1:2])
hexed = exif_bytes(8).hex()
raw = "\nexif\n%8d\n" % (len(hexed) // 2) + "\n".join(hexed[i:i + 72] for i in range(0, len(hexed), 72)) + "\n"
info = PngImagePlugin.PngInfo()
info.add_text("Raw profile type exif", raw, zip=True)
p = t.path("rawprofile.png")
Image.fromarray(a).save(p, pnginfo=info)
check_image("PNG 'Raw profile type exif' orientation 8", p, transforms=TRANSFORMS[1:2])
for n, xmp in enumerate(('<x:xmpmeta><rdf:Description tiff:Orientation="3"/></x:xmpmeta>',
                         '<x:xmpmeta><tiff:Orientation>5</tiff:Orientation></x:xmpmeta>')):
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp)
    p = t.path("xmp%d.png" % n)
    Image.fromarray(a).save(p, pnginfo=info)
    check_image("PNG XMP tiff:Orientation", p, transforms=TRANSFORMS[1:2])

# ------------------------------------------------------------ PNG (PIL's writer)
for i, (h, w) in enumerate(SIZES):
    a = picture(h, w)
    im = Image.fromarray(a)
    for mode in ("L", "LA", "RGB", "RGBA", "P", "1"):
        if h * w > 20000 and (i + len(mode)) % 2:
            continue
        p = t.path("p%d_%s.png" % (i, mode))
        x = im.convert(mode)
        if mode in ("LA", "RGBA"):
            x.putalpha(Image.fromarray(rs.randint(0, 256, (h, w)).astype(np.uint8)))
        x.save(p)
        check_image("PNG %s" % mode, p, transforms=TRANSFORMS[:2] if i % 4 else TRANSFORMS)
    # 16-bit grayscale: the high byte (PIL's "I" -> "RGB" would clip at 255)
    g = rs.randint(0, 65536, (h, w)).astype(np.uint16)
    p = t.path("p%d_I16.png" % i)
    Image.fromarray(g).save(p)
    t.check(Image.open(p).mode in ("I", "I;16"), "PIL reads %s as mode %s" % (os.path.basename(p), Image.open(p).mode))
    check_image("PNG 16-bit grayscale (high byte)", p, want_dec=np.repeat((g >> 8).astype(np.uint8)[..., None], 3, -1))

# ------------------------------------------------------------ PNG (our writer)
for i, (h, w) in enumerate(SIZES[::2]):
    s16 = rs.randint(0, 65536, (h, w, 4)).astype(np.uint32)
    for ctype, c, name in ((2, 3, "RGB;16"), (6, 4, "RGBA;16"), (4, 2, "LA;16")):
        p = t.path("q%d_%s.png" % (i, name.replace(";", "")))
        write_png(p, s16[..., :c], 16, ctype, interlace=i % 2 == 1)
        check_image("PNG %s%s" % (name, " interlaced" if i % 2 else ""), p)
    for depth in (1, 2, 4):
        v = rs.randint(0, 1 << depth, (h, w, 1)).astype(np.uint32)
        p = t.path("q%d_g%d.png" % (i, depth))
        write_png(p, v, depth, 0, interlace=i % 2 == 0)
        check_image("PNG %d-bit grayscale" % depth, p)
        p = t.path("q%d_p%d.png" % (i, depth))
        plte = rs.randint(0, 256, (1 << depth, 3))
        write_png(p, v, depth, 3, plte=plte, trns=bytes([0, 128]), interlace=i % 2 == 1)
        check_image("PNG %d-bit palette with tRNS" % depth, p)
    # indices past a short palette: PIL's palette is a grey ramp there
    v = rs.randint(0, 256, (h, w, 1)).astype(np.uint32)
    p = t.path("q%d_short.png" % i)
    write_png(p, v, 8, 3, plte=rs.randint(0, 256, (5, 3)))
    check_image("PNG palette of 5 colours, indices to 255", p)
    p = t.path("q%d_adam7.png" % i)
    write_png(p, rs.randint(0, 256, (h, w, 3)).astype(np.uint32), 8, 2, interlace=True)
    check_image("PNG RGB interlaced", p)
    p = t.path("q%d_trns.png" % i)
    write_png(p, rs.randint(0, 256, (h, w, 1)).astype(np.uint32), 8, 0, trns=b"\0\x10")
    check_image("PNG gray with tRNS", p)
# no IEND (PIL reads it: the pixels are complete)
p = t.path("noiend.png")
write_png(p, picture(20, 30).astype(np.uint32), 8, 2, iend=False)
check_image("PNG without IEND", p)

# ------------------------------------------------------------ refusals
def expect_refusal(label, path, must=()):
    rc, out, err, dt = E.run_prog([DUMP, path, t.path("r")], timeout=60)
    lines = err.strip().splitlines()
    ok = rc == 1 and len(lines) == 1 and path in lines[0] and not any(w in err.lower() for w in E.BAD_WORDS)
    ok = ok and all(m.lower() in err.lower() for m in must) and dt < 10
    t.check(ok, "%s: rc=%s %.2fs: %s" % (label, rc, dt, err.strip()[:300]))


base = picture(120, 90)
p = t.path("x.gif")
Image.fromarray(base).save(p)
expect_refusal("GIF", p, ("not a JPEG or PNG", "GIF8", "a GIF image"))
p = t.path("x.bmp")
Image.fromarray(base).save(p)
expect_refusal("BMP", p, ("not a JPEG or PNG", "BMP"))
p = t.path("x.npy")
np.save(p, np.zeros(3, np.float32))
expect_refusal(".npy", p, ("not a JPEG or PNG", "npy"))
p = t.path("text.jpg")
open(p, "w").write("hello\n")
expect_refusal("text named .jpg", p, ("not a JPEG or PNG", "hello"))
p = t.path("empty.png")
open(p, "w").close()
expect_refusal("empty file", p, ("empty",))
os.mkdir(t.path("dir.jpg"))
expect_refusal("directory", t.path("dir.jpg"), ("directory",))
expect_refusal("missing file", t.path("nosuch.jpg"), ("cannot open",))
for prog in (False, True):
    b = io.BytesIO()
    Image.fromarray(base).save(b, "JPEG", quality=90, progressive=prog)
    blob = b.getvalue()
    for cut in (3, 20, 200, len(blob) // 2, len(blob) - 2):
        p = t.path("trunc%d_%d.jpg" % (prog, cut))
        open(p, "wb").write(blob[:cut])
        pil_ok = True
        try:
            Image.open(p).load()
        except Exception:
            pil_ok = False
        t.check(not pil_ok, "PIL refuses %s too" % os.path.basename(p))
        expect_refusal("truncated %sJPEG (%d of %d bytes)" % ("progressive " if prog else "", cut, len(blob)), p)
    p = t.path("garbage%d.jpg" % prog)
    open(p, "wb").write(blob[:3] + rs.randint(0, 256, 4000).astype(np.uint8).tobytes())
    expect_refusal("JPEG signature then garbage", p)
b = io.BytesIO()
Image.fromarray(base).save(b, "PNG")
blob = b.getvalue()
for cut in (8, 20, 40, len(blob) // 2, len(blob) - 20):
    p = t.path("trunc_%d.png" % cut)
    open(p, "wb").write(blob[:cut])
    expect_refusal("truncated PNG (%d of %d bytes)" % (cut, len(blob)), p)
p = t.path("crc.png")
bad = bytearray(blob)
bad[len(blob) // 2] ^= 0x55
open(p, "wb").write(bytes(bad))
expect_refusal("PNG with a damaged IDAT", p)
# header dimensions over MC_IMAGE_MAX_PIXELS (178956970, PIL's limit), refused before allocating
p = t.path("huge.png")
open(p, "wb").write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
                    + png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) + png_chunk(b"IEND", b""))
expect_refusal("PNG header 100000x100000", p, ("more than",))
j = bytearray(open(t.path("j0_baseline.jpg"), "rb").read())
sof = j.find(b"\xff\xc0")
j[sof + 5:sof + 9] = struct.pack(">HH", 60000, 60000)
p = t.path("huge.jpg")
open(p, "wb").write(bytes(j))
expect_refusal("JPEG header 60000x60000", p, ("more than",))

print("image_preproc: %d images, %d transforms; max |u8 - PIL| = %d levels; max |x - numpy(x_u8)| = %.3g; "
      "max |x - numpy(PIL)| = %.3g" % (stats["images"], stats["transforms"], stats["u8"], stats["f32"],
                                       stats["f32_vs_pil"]))
t.finish()
