# Regenerates the PIL reference files in this folder (Pillow 9.4, Debian
# python3-pil): python3 golden.py. The Go tests rebuild the same inputs from
# pattern() (see pattern in decode_test.go) and compare against these.
from PIL import Image


def pattern(w, h, c):
    return bytes((x * 13 + y * 29 + ch * 71 + (x * y) % 17 * 5) % 256
                 for y in range(h) for x in range(w) for ch in range(c))


def smooth(w, h):
    # gentle gradients, so lossy codecs keep them
    return bytes(v for y in range(h) for x in range(w)
                 for v in (x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2), 255 - x * 4 % 256))


def raw(name, img):
    open(name, "wb").write(img.tobytes())


rgb = Image.frombytes("RGB", (37, 23), pattern(37, 23, 3))
raw("resize_37x23_to_11x7.rgb", rgb.resize((11, 7), Image.BILINEAR))
raw("resize_37x23_to_48x30.rgb", rgb.resize((48, 30), Image.BILINEAR))
gray = Image.frombytes("L", (40, 64), pattern(40, 64, 1))
raw("resize_40x64_to_16x25.gray", gray.resize((16, 25), Image.BILINEAR))

rgba = Image.frombytes("RGBA", (24, 16), smooth(24, 16))
rgba.convert("RGB").save("lossy.webp", quality=90)
rgba.save("lossy_alpha.webp", quality=90)
rgba.save("lossless_alpha.webp", lossless=True)
for name in ("lossy.webp", "lossy_alpha.webp", "lossless_alpha.webp"):
    raw(name + ".rgb", Image.open(name).convert("RGB"))
