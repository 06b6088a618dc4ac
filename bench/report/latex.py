"""LaTeX report: paste-ready booktabs table fragments (a comment names the packages they need), or with
``standalone`` the same fragments in a document that compiles with pdflatex as printed."""

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


def tex_code(text: object) -> str:
    """Text whose `backticked` parts are commands: those in \texttt, the rest escaped."""
    parts = str(text).split("`")
    return "".join(rf"\texttt{{{tex_escape(p)}}}" if i % 2 else tex_escape(p) for i, p in enumerate(parts))


def column_spec(table: Table) -> str:
    """Method and spec left-aligned, figures right-aligned."""
    return "ll" + "".join("r" for _ in table.columns)


def group_rules(table: Table) -> list[tuple[str, int, int, int]]:
    """(upper header, span, first column, last column) with 1-based LaTeX column numbers."""
    out, start = [], 3
    for label, span in table.groups():
        out.append((label, span, start, start + span - 1))
        start += span
    return out


def packages(context: dict) -> list[str]:
    """The packages the fragments need: booktabs (rules), array (the wrapped columns of "Not evaluated"),
    graphicx (\resizebox of wide tables)."""
    wide = any(len(t.columns) > 5 for t in context["tables"]) or bool(context["reproduction"])
    return ["booktabs", *(["array"] if context["absent"] else []), *(["graphicx"] if wide else [])]


def render_latex(context: dict, standalone: bool = False) -> str:
    """Table fragments to paste into a paper, or (``standalone``) a whole document around them."""
    from bench.report.render import environment

    env = environment(block_start_string="((*", block_end_string="*))", variable_start_string="(((",
                      variable_end_string=")))", comment_start_string="((=", comment_end_string="=))")
    env.filters.update(tex=tex_escape, comment=tex_comment, cell=tex_cell, code=tex_code,
                       format_usepackage=lambda name: rf"\usepackage{{{name}}}")
    env.globals.update(column_spec=column_spec, group_rules=group_rules)
    needed = packages(context)
    body = env.get_template("tables.tex.j2").render(**context, packages=needed)
    if not standalone:
        return body
    return env.get_template("document.tex.j2").render(packages=needed, body=body)
