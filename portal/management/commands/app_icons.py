"""Draw the installable app's PNG icons from the shield of static/favicon.svg.

`manage.py app_icons` writes static/icons/ (192, 512, a maskable 512 and the 180 px
apple-touch-icon). Pillow has no SVG renderer, so the favicon's three shapes are drawn here in
its own 32-unit coordinates, four times larger than needed and scaled down for smooth edges.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from PIL import Image, ImageDraw

BLUE = (10, 77, 163, 255)
WHITE = (255, 255, 255, 255)
SUPERSAMPLE = 4


def _cubic(p0, p1, p2, p3, steps=24):
    for i in range(1, steps + 1):
        t = i / steps
        yield tuple(
            (1 - t) ** 3 * a + 3 * (1 - t) ** 2 * t * b + 3 * (1 - t) * t**2 * c + t**3 * d
            for a, b, c, d in zip(p0, p1, p2, p3, strict=True)
        )


def shield_outline():
    """favicon.svg's `M16 2 28 6v9c0 7.5-5.1 13-12 15C9.1 28 4 22.5 4 15V6Z`."""
    points = [(16, 2), (28, 6), (28, 15)]
    points += _cubic((28, 15), (28, 22.5), (22.9, 28), (16, 30))
    points += _cubic((16, 30), (9.1, 28), (4, 22.5), (4, 15))
    return [*points, (4, 6)]


def draw_icon(size, *, maskable=False):
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), BLUE if maskable else (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    # Maskable: the shield stays inside the central 80 % circle a launcher may crop to.
    scale = big / 32 * (0.6 if maskable else 1.0)
    offset = (big - 32 * scale) / 2

    def at(x, y):
        return (offset + x * scale, offset + y * scale)

    shield, mark = (WHITE, BLUE) if maskable else (BLUE, WHITE)
    draw.polygon([at(x, y) for x, y in shield_outline()], fill=shield)
    width = 3.5 * scale
    draw.line([at(16, 9), at(16, 18)], fill=mark, width=round(width))
    for y in (9, 18):  # round caps
        cx, cy = at(16, y)
        draw.ellipse([cx - width / 2, cy - width / 2, cx + width / 2, cy + width / 2], fill=mark)
    cx, cy = at(16, 23)
    radius = 2.2 * scale
    draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=mark)
    return image.resize((size, size), Image.Resampling.LANCZOS)


ICONS = {
    "icon-192.png": (192, False),
    "icon-512.png": (512, False),
    "maskable-512.png": (512, True),
    "apple-touch-icon.png": (180, True),  # iOS fills transparency with black: a full square
}


class Command(BaseCommand):
    help = "Draw the app icons (static/icons/*.png) from the favicon's shield."

    def handle(self, *args, **options):
        folder = Path(settings.BASE_DIR) / "static" / "icons"
        folder.mkdir(parents=True, exist_ok=True)
        for name, (size, maskable) in ICONS.items():
            draw_icon(size, maskable=maskable).save(folder / name, optimize=True)
            self.stdout.write(f"{folder / name}")
