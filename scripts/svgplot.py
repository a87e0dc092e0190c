"""Plain SVG charts for the benchmark reports (standard library only, no
matplotlib on the machine): horizontal bars with min–max whiskers, and
line charts on log axes. Each function writes one self-contained .svg
file; `rsvg-convert` turns it into a PNG to look at.
"""

import math
from xml.sax.saxutils import escape

# Colour-blind-safe palette (Okabe–Ito), one colour per series in turn.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
           "#882255", "#44AA99", "#999933", "#888888"]
FONT = 'font-family="DejaVu Sans, Arial, sans-serif"'


def _svg(width, height, body):
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">\n<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(body) + "\n</svg>\n")


def _text(x, y, s, size=12, anchor="start", weight="normal", rotate=None, fill="#222"):
    rot = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" {FONT} font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}"{rot}>{escape(str(s))}</text>')


def _line(x1, y1, x2, y2, stroke="#222", width=1, dash=None):
    d = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" stroke-width="{width}"{d}/>'


def _log_ticks(lo, hi):
    """Powers of ten and their 2× and 5× between lo and hi."""
    ticks = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo <= v <= hi:
                ticks.append(v)
    return ticks


def _log_range(values, pad=1.3):
    lo, hi = min(values), max(values)
    return lo / pad, hi * pad


def si(v):
    """1200 -> 1.2k, 1500000 -> 1.5M."""
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


def micros(v):
    return f"{v / 1000:g} ms" if v >= 1000 else f"{v:g} µs"


def bars(path, title, rows, xlabel, note=""):
    """Horizontal bars on a log axis. rows: (label, median, lo, hi, colour
    index); the bar is the median, the whisker the min–max."""
    rows = [r for r in rows if r[1]]
    if not rows:
        return False
    left, right, top, row_h = 390, 40, 50, 22
    width = 1000
    height = top + row_h * len(rows) + 70
    lo, hi = _log_range([r[2] for r in rows] + [r[3] for r in rows])
    plot_w = width - left - right
    x = lambda v: left + plot_w * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
    body = [_text(width / 2, 24, title, 15, "middle", "bold")]
    bottom = top + row_h * len(rows)
    for t in _log_ticks(lo, hi):
        body.append(_line(x(t), top, x(t), bottom, "#ddd"))
        body.append(_text(x(t), bottom + 16, si(t), 11, "middle"))
    for i, (label, med, mn, mx, colour) in enumerate(rows):
        y = top + i * row_h
        c = PALETTE[colour % len(PALETTE)]
        body.append(f'<rect x="{left}" y="{y + 4}" width="{max(x(med) - left, 1):.1f}" height="{row_h - 8}" '
                    f'fill="{c}" fill-opacity="0.75"/>')
        mid = y + row_h / 2
        body += [_line(x(mn), mid, x(mx), mid, "#000", 1.5), _line(x(mn), mid - 5, x(mn), mid + 5, "#000", 1.5),
                 _line(x(mx), mid - 5, x(mx), mid + 5, "#000", 1.5)]
        body.append(_text(left - 8, mid + 4, label, 11, "end"))
        body.append(_text(min(x(mx) + 6, width - right), mid + 4, si(round(med)), 10))
    body.append(_line(left, bottom, width - right, bottom))
    body.append(_text(left + plot_w / 2, bottom + 36, xlabel, 12, "middle"))
    if note:
        body.append(_text(left + plot_w / 2, bottom + 54, note, 10, "middle", fill="#555"))
    open(path, "w").write(_svg(width, height, body))
    return True


def lines(path, title, series, xlabel, ylabel, x_ticks=None, note=""):
    """A line chart, both axes logarithmic. series: (name, [(x, y), ...],
    colour index, dashed); x_ticks: optional [(value, label)]."""
    series = [s for s in series if s[1]]
    if not series:
        return False
    width, height = 1100, 620
    left, right, top, bottom_pad = 80, 300, 50, 80
    xs = [p[0] for s in series for p in s[1]]
    ys = [p[1] for s in series for p in s[1]]
    xlo, xhi = _log_range(xs, 1.15)
    ylo, yhi = _log_range(ys)
    pw, ph = width - left - right, height - top - bottom_pad
    X = lambda v: left + pw * (math.log10(v) - math.log10(xlo)) / (math.log10(xhi) - math.log10(xlo))
    Y = lambda v: top + ph - ph * (math.log10(v) - math.log10(ylo)) / (math.log10(yhi) - math.log10(ylo))
    body = [_text(width / 2 - right / 2 + 40, 24, title, 15, "middle", "bold")]
    for t in _log_ticks(ylo, yhi):
        body.append(_line(left, Y(t), left + pw, Y(t), "#e3e3e3"))
        body.append(_text(left - 6, Y(t) + 4, micros(t), 10, "end"))
    for v, label in (x_ticks or [(t, si(t)) for t in _log_ticks(xlo, xhi)]):
        if xlo <= v <= xhi:
            body.append(_line(X(v), top, X(v), top + ph, "#e3e3e3"))
            body.append(_text(X(v), top + ph + 16, label, 10, "middle"))
    body += [_line(left, top + ph, left + pw, top + ph), _line(left, top, left, top + ph)]
    body.append(_text(left + pw / 2, top + ph + 38, xlabel, 12, "middle"))
    body.append(_text(18, top + ph / 2, ylabel, 12, "middle", rotate=-90))
    if note:
        body.append(_text(left + pw / 2, top + ph + 58, note, 10, "middle", fill="#555"))
    for i, (name, points, colour, dashed) in enumerate(series):
        c = PALETTE[colour % len(PALETTE)]
        pts = sorted(points)
        d = " ".join(f"{X(px):.1f},{Y(py):.1f}" for px, py in pts)
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        body.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
        if len(pts) <= 12:
            body += [f'<circle cx="{X(px):.1f}" cy="{Y(py):.1f}" r="3.5" fill="{c}"/>' for px, py in pts]
        ly = top + 10 + i * 20
        body.append(_line(width - right + 20, ly, width - right + 48, ly, c, 2, "6 4" if dashed else None))
        body.append(_text(width - right + 54, ly + 4, name, 11))
    open(path, "w").write(_svg(width, height, body))
    return True
