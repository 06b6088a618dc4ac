"""LaTeX report: one booktabs table per kind in a document that compiles with pdflatex as printed."""

from __future__ import annotations

import re

from bench.report.tables import Cell, Table

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
            ">": r"\textgreater{}", "|": r"\textbar{}"}
_UNICODE = {"†": r"\textdagger{}", "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$", "↑": r"$\uparrow$",
            "↓": r"$\downarrow$", "·": r"$\cdot$", "±": r"$\pm$", "–": "--", "—": "---", "…": r"\ldots{}",
            "µ": r"$\mu$", "°": r"\textdegree{}", "’": "'", "‘": "`", "“": "``", "”": "''"}
_PATTERN = re.compile("|".join(re.escape(k) for k in (*_SPECIAL, *_UNICODE)))


def tex_escape(text: object) -> str:
    """Plain text -> LaTeX source that prints it (special characters escaped, other non-ASCII dropped to ?)."""
    out = _PATTERN.sub(lambda m: _SPECIAL.get(m.group(0)) or _UNICODE[m.group(0)], str(text))
    return "".join(c if ord(c) < 128 else "?" for c in out)


def tex_comment(text: object) -> str:
    """One-line LaTeX comment body (no line breaks, printable ASCII)."""
    return "".join(c if 32 <= ord(c) < 127 else " " for c in str(text))


def tex_cell(cell: Cell) -> str:
    text = tex_escape(cell.text)
    if cell.rank == 1:
        text = rf"\textbf{{{text}}}"
    elif cell.rank == 2:
        text = rf"\underline{{{text}}}"
    if cell.dagger:
        text += r"$^\dagger$"
    if cell.footnote:
        text += rf"\textsuperscript{{{cell.footnote}}}"
    return text


def column_spec(table: Table) -> str:
    return "l" + "".join("r" for _ in table.columns)


def group_rules(table: Table) -> list[tuple[str, int, int, int]]:
    """(upper header, span, first column, last column) with 1-based LaTeX column numbers."""
    out, start = [], 2
    for label, span in table.groups():
        out.append((label, span, start, start + span - 1))
        start += span
    return out


def render_latex(context: dict) -> str:
    from bench.report.render import environment

    env = environment(block_start_string="((*", block_end_string="*))", variable_start_string="(((",
                      variable_end_string=")))", comment_start_string="((=", comment_end_string="=))")
    env.filters.update(tex=tex_escape, comment=tex_comment, cell=tex_cell)
    env.globals.update(column_spec=column_spec, group_rules=group_rules)
    return env.get_template("report.tex.j2").render(**context)
