"""How many images each cell of a quality table is over, said plainly.

By default (``images="shared"``) every row of a column is measured on the images all its rows share
(:func:`bench.report.summary.summarise`); a row measured on fewer images than the most-measured row of its
column is the reason the column shrank, and its cells say so in a footnote. With ``images="all"`` each cell
is over its own images: a cell over fewer images than its column's most is marked, footnoted with its n and
left out of the ranking, since its mean is not comparable with the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.report.tables import Table


def mark_image_counts(table: Table, images: str) -> None:
    """Footnote cells over fewer images than their column's most and add a note giving n per dataset."""
    counts: dict[str, tuple[int, int]] = {}  # dataset -> (fewest shared, most measured)
    for j, column in enumerate(table.columns):
        cells = [(row, row.cells[j]) for row in table.rows if row.cells[j].value is not None]
        if not cells:
            continue
        most = max(cell.n for _, cell in cells)
        common = min(cell.common_n for _, cell in cells)
        shared, measured = counts.get(column.dataset, (common, most))
        counts[column.dataset] = (min(shared, common), max(measured, most))
        for row, cell in cells:
            if cell.n >= most:
                continue
            if images == "shared":
                text = (f"{row.spec} was measured on {cell.n} of the {most} images of {column.dataset}; every row of "
                        f"this column is compared on the {common} images all its rows share")
            else:
                cell.partial = True
                text = (f"{row.spec}: mean over {cell.n} of the {most} images of {column.dataset}, not comparable "
                        f"with the rows over {most}; not ranked")
            cell.footnote = table.footnote(text)
    if not counts:
        return
    if images == "shared":
        parts = [f"{d} {s}" + (f" (of {m} measured)" if m > s else "") for d, (s, m) in counts.items()]
        table.notes.append("Images compared (every row of a column on the images all its rows share): "
                           + ", ".join(parts) + ".")
    else:
        parts = [f"{d} up to {m}" for d, (_s, m) in counts.items()]
        table.notes.append("Each cell is a mean over its own images (--images all): " + ", ".join(parts) + ".")
