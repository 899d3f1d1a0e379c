"""Silhouettes of the synthetic product types, in percent of the image side (x right, y down).

Points are written SVG-style ("30,22 42,16 ...") to keep each silhouette a few readable lines.
A silhouette has filled polygons, holes cut back out, thick strokes that belong to the object
(straps, chains, fringe) and thin detail lines drawn in a darker tone (seams, soles, buttons).
"""

from __future__ import annotations

import math

Point = tuple[float, float]
Path_ = str | list[Point]


def arc(cx: float, cy: float, rx: float, ry: float, a0: float = 0.0, a1: float = 360.0) -> list[Point]:
    """Points along an ellipse from angle a0 to a1 (degrees, clockwise on screen)."""
    n = max(8, int(abs(a1 - a0) / 10))
    ts = [math.radians(a0 + (a1 - a0) * k / n) for k in range(n + 1)]
    return [(cx + rx * math.cos(t), cy + ry * math.sin(t)) for t in ts]


def _points(parts: tuple[Path_, ...]) -> list[Point]:
    out: list[Point] = []
    for part in parts:
        if isinstance(part, str):
            for pair in part.split():
                x, y = pair.split(",")
                out.append((float(x), float(y)))
        else:
            out.extend(part)
    return out


class Shape:
    def __init__(self) -> None:
        self.fills: list[list[Point]] = []
        self.holes: list[list[Point]] = []
        self.strokes: list[tuple[list[Point], float]] = []
        self.details: list[tuple[list[Point], float]] = []

    def fill(self, *parts: Path_) -> None:
        """One polygon, from point strings and arcs joined in order."""
        self.fills.append(_points(parts))

    def hole(self, *parts: Path_) -> None:
        self.holes.append(_points(parts))

    def stroke(self, width: float, *lines: Path_) -> None:
        self.strokes += [(_points((line,)), width) for line in lines]

    def detail(self, width: float, *lines: Path_) -> None:
        self.details += [(_points((line,)), width) for line in lines]


def silhouette(name: str) -> Shape:
    """The silhouette of a product type; one case per type reads as a table."""
    s = Shape()
    match name:
        case "tshirt":
            s.fill("30,22 42,16 58,16 70,22 88,36 80,47 70,41 70,86 30,86 30,41 20,47 12,36")
            s.hole(arc(50, 15, 8, 5))
            s.detail(0.8, "30,41 34,24", "70,41 66,24")
        case "shirt":
            s.fill("30,20 42,15 58,15 70,20 84,30 92,80 83,82 72,45 72,88 28,88 28,45 17,82 8,80 16,30")
            s.detail(1.2, "42,15 50,24 58,15")
            s.detail(0.8, "50,24 50,88")
            s.detail(2.0, *(f"50,{30 + 12 * k} 50.5,{30 + 12 * k}" for k in range(5)))
        case "tank":
            s.fill("36,12 42,12 45,26 55,26 58,12 64,12 66,34 71,88 29,88 34,34")
        case "trousers":
            s.fill("32,6 68,6 73,94 56,94 50,32 44,94 27,94")
            s.detail(0.8, "32,12 68,12", "50,12 50,30")
        case "skirt":
            s.fill("35,18 65,18 66,24 82,80 18,80 34,24")
            s.detail(0.8, "34,24 66,24")
            s.detail(0.6, "44,30 40,78", "56,30 60,78")
        case "shorts":
            s.fill("30,24 70,24 75,64 54,66 50,46 46,66 25,64")
            s.detail(0.8, "30,30 70,30")
        case "dress":
            s.fill("40,6 45,6 47,15 53,15 55,6 60,6 62,38 80,94 20,94 38,38")
            s.detail(1.0, "38,38 62,38")
        case "jumpsuit":
            s.fill("38,5 44,5 46,13 54,13 56,5 62,5 64,40 70,95 56,95 50,52 44,95 30,95 36,40")
            s.detail(1.0, "36,40 64,40")
        case "coat" | "jacket":
            h = 95 if name == "coat" else 70
            right = f"34,8 44,6 56,6 66,8 82,20 90,{h - 12} 80,{h - 10} 73,36 74,{h}"
            s.fill(right, f"26,{h} 27,36 20,{h - 10} 10,{h - 12} 18,20")
            s.detail(1.2, "44,6 50,40 56,6")
            s.detail(0.8, f"50,40 50,{h}")
            s.detail(2.5, *(f"46,{48 + 10 * k} 46.5,{48 + 10 * k}" for k in range((h - 45) // 10)))
        case "sneaker":
            s.fill("10,56 38,52 52,38 70,36 80,44 88,58 90,70 10,70")
            s.detail(2.0, "10,66 90,66")
            s.detail(0.8, "50,44 62,50", "55,40 66,46")
        case "boot":
            s.fill("30,12 58,12 60,54 84,62 88,78 28,78")
            s.detail(2.0, "28,74 88,74")
            s.detail(0.8, "30,18 58,18")
        case "pump":
            s.fill("14,52 30,44 52,56 80,58 88,66 84,70 58,70 30,62 24,80 19,80 16,62")
        case "tote":
            s.fill("22,40 78,40 82,88 18,88")
            s.stroke(3.5, arc(50, 40, 18, 22, 180, 360))
        case "clutch":
            s.fill("14,38 86,38 86,70 14,70")
            s.detail(1.0, "14,38 50,56 86,38")
        case "backpack":
            s.fill(arc(50, 30, 22, 10, 180, 360), "72,90 28,90")
            s.stroke(2.5, arc(50, 20, 7, 6, 180, 360))
            s.detail(1.0, "34,58 66,58 66,82 34,82 34,58")
        case "necklace":
            s.stroke(2.5, arc(50, 26, 26, 40, 20, 160))
            s.fill(arc(50, 70, 7, 9))
            for a in range(30, 160, 15):  # beads along the chain
                t = math.radians(a)
                s.fill(arc(50 + 26 * math.cos(t), 26 + 40 * math.sin(t), 2.5, 2.5))
        case "earrings":
            for cx in (34, 66):
                s.stroke(2.0, arc(cx, 30, 5, 6, 180, 360))
                s.fill(arc(cx, 52, 9, 16))
        case "bracelet":
            s.fill(arc(50, 50, 32, 26))
            s.hole(arc(50, 50, 22, 16))
        case "cap":
            s.fill(arc(48, 56, 26, 26, 180, 360))
            s.fill("44,52 90,56 86,64 44,62")
        case "brimhat":
            s.fill(arc(50, 62, 42, 12))
            s.fill(arc(50, 42, 20, 12, 180, 360), "70,62 30,62")
            s.detail(2.0, "31,56 69,56")
        case "beanie":
            s.fill(arc(50, 52, 26, 32, 180, 360), "76,70 24,70")
            s.detail(1.0, "24,58 76,58")
        case "longscarf":
            s.fill("36,8 64,8 62,88 38,88")
            s.stroke(1.0, *(f"{39 + 2.75 * k},87 {39 + 2.75 * k},95" for k in range(9)))  # fringe
        case "squarescarf":
            s.fill("50,10 90,50 50,90 10,50")
        case "sunglasses":
            s.fill(arc(30, 50, 17, 12))
            s.fill(arc(70, 50, 17, 12))
            s.stroke(2.0, arc(50, 47, 5, 3, 180, 360), "13,46 5,40", "87,46 95,40")
            s.detail(2.0, arc(30, 50, 13, 8), arc(70, 50, 13, 8))  # lenses
        case "belt":
            s.fill("6,44 94,44 94,56 6,56")
            s.detail(1.2, "18,40 28,40 28,60 18,60 18,40")  # buckle
            s.detail(2.0, *(f"{40 + 8 * k},50 {40.5 + 8 * k},50" for k in range(4)))
        case "watch":
            s.fill("42,6 58,6 58,94 42,94")
            s.fill(arc(50, 50, 16, 16))
            s.detail(1.2, arc(50, 50, 12, 12))
            s.detail(1.0, "50,50 50,42", "50,50 56,50")
        case _:
            raise ValueError(f"unknown silhouette {name!r}")
    return s
