#!/usr/bin/python3
"""examples/digitseg/figure.py MAMBAC [OUT.png] -- the README's picture of a
compiled segmentor's --mask and --overlay: compiles the bundled digit
segmentor with MAMBAC (the compiler's path), runs the executable on two
bundled scenes and lays the results out side by side.

Takes: MAMBAC, the mambac executable; the bundled digitseg.yaml,
digitseg.pth and images/scene1.png (96x96, the compiled size) and
images/scene4.png (144x144: the executable resizes it to 96x96 and maps
the class map back to 144x144).  Needs python3 with PIL (and torch,
which train.py, read for the classes and palette, imports).
Produces: OUT.png (default docs/images/digitseg_overlay.png in the
repository), one row per scene: the input | the --mask PNG | the --overlay
PNG, exactly as the executable wrote them, each enlarged to 288x288 by
pixel repetition (3x, 2x) so that the pixels stay what they are; a caption
row on top, a legend row (each class's palette colour, as train.py writes
it into the checkpoint) below.  Written through a temporary name.  The
compiled model and its outputs go to a temporary directory, removed at the
end.
Exit status 0, or 1 with a message when a step fails.
"""
import os
import subprocess
import sys
import tempfile

from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import train  # noqa: E402  (CLASSES, PALETTE)

REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
SCENES = ("scene1", "scene4")
PANEL = 288                     # each picture's side in the figure
GAP = 8
CAPTION = 18
LEGEND = 24
CAPTIONS = ("image", "--mask", "--overlay")


def run(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True)
    except OSError as e:
        print("figure.py: cannot run %s: %s" % (argv[0], e.strerror))
        sys.exit(1)
    if p.returncode != 0:
        print("figure.py: %s failed (exit %s): %s" % (os.path.basename(argv[0]), p.returncode,
                                                     (p.stderr or p.stdout).strip()[-500:]))
        sys.exit(1)
    return p.stdout


def figure(mambac, out):
    with tempfile.TemporaryDirectory(prefix="digitseg_") as tmp:
        exe = os.path.join(tmp, "digitseg")
        run([mambac, "compile", os.path.join(HERE, "digitseg.yaml"), "--weights",
             os.path.join(HERE, "digitseg.pth"), "-o", exe])
        rows = []
        for name in SCENES:
            img = os.path.join(HERE, "images", name + ".png")
            mask, over = os.path.join(tmp, name + "_mask.png"), os.path.join(tmp, name + "_overlay.png")
            print(run([exe, "--image", img, "--mask", mask, "--overlay", over]).strip())
            rows.append([Image.open(p).convert("RGB") for p in (img, mask, over)])
    W = 3 * PANEL + 2 * GAP
    H = CAPTION + len(rows) * PANEL + (len(rows) - 1) * GAP + LEGEND
    fig = Image.new("RGB", (W, H), (255, 255, 255))
    draw = ImageDraw.Draw(fig)
    for c, text in enumerate(CAPTIONS):
        w = draw.textlength(text)
        draw.text((c * (PANEL + GAP) + (PANEL - w) / 2, 3), text, fill=(0, 0, 0))
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            k = PANEL // im.size[0]
            im = im.resize((im.size[0] * k, im.size[1] * k), Image.NEAREST)
            fig.paste(im, (c * (PANEL + GAP) + (PANEL - im.size[0]) // 2,
                           CAPTION + r * (PANEL + GAP) + (PANEL - im.size[1]) // 2))
    widths = [18 + draw.textlength(name) + 16 for name in train.CLASSES]
    x, y = (W - sum(widths)) / 2, H - LEGEND + 5
    for name, colour, w in zip(train.CLASSES, train.PALETTE, widths):
        draw.rectangle((x, y, x + 13, y + 13), fill=tuple(colour), outline=(0, 0, 0))
        draw.text((x + 18, y + 2), name, fill=(0, 0, 0))
        x += w
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp.png"
    fig.save(tmp, optimize=True)
    os.replace(tmp, out)
    print("figure.py: wrote %s (%dx%d)" % (out, W, H))
    return 0


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[1].startswith("-"):
        print(__doc__)
        sys.exit(2)
    sys.exit(figure(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else
                    os.path.join(REPO, "docs", "images", "digitseg_overlay.png")))
