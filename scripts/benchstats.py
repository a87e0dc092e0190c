"""Small statistics shared by the benchmark reports (standard library only):
median with min–max, a least-squares slope with its 95% confidence
interval (is a series still growing, or flat?), and the held-only rule for
latency figures.
"""

import math
import statistics

# Two-sided 95% quantiles of Student's t, by degrees of freedom (1..30);
# beyond 30 the normal's 1.96 is close enough.
T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
       2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t95(df):
    return T95[df - 1] if 1 <= df <= len(T95) else 1.96


def slope(xs, ys):
    """(slope, low, high): the least-squares slope of ys over xs and its 95%
    confidence interval; None with fewer than 3 points."""
    n = len(xs)
    if n < 3 or n != len(ys):
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    a = my - b * mx
    residual = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys))
    se = math.sqrt(residual / (n - 2) / sxx)
    half = t95(n - 2) * se
    return b, b - half, b + half


def spread(values, fmt):
    """"median (min–max)" of the values that are not None, formatted."""
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}–{fmt(max(values))})"


# Words in loadgen's `not_held_because` sentences -> the rule's short name.
RULES = [("of the target", "achieved"), ("never sent", "unsent"), ("send lag", "lag"),
         ("never answered", "unanswered"), ("worker", "worker")]


def held_failures(run):
    """The short names of the rules a loadgen run broke ("achieved",
    "unsent", "lag", "unanswered", "worker"), from the sentences of its
    `not_held_because`; "?" for a sentence or report that does not say."""
    if run["target_held"]:
        return []
    rules = [next((rule for words, rule in RULES if words in why), "?") for why in run.get("not_held_because", [])]
    return sorted(set(rules)) or ["?"]


def held_cell(runs, value, fmt):
    """value over the runs that held their target, median (min–max);
    "not held (rules)" when none did; "(k of n held)" when only some did."""
    held = [r for r in runs if r["target_held"]]
    if not held:
        rules = sorted({rule for r in runs for rule in held_failures(r)})
        return f"not held ({', '.join(rules)})"
    cell = spread([value(r) for r in held], fmt)
    return cell if len(held) == len(runs) else f"{cell} ({len(held)} of {len(runs)} held)"
