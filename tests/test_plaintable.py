"""manymodels.plaintable draws what rich draws on a pipe, or leaves the drawing to rich."""

from __future__ import annotations

import io
import random
from typing import Any

import pytest
from rich.console import Console

from manymodels.plaintable import LazyConsole, Table

WIDTH = 160


def rich_text(*objects: Any, **options: Any) -> str:
    buf = io.StringIO()
    Console(file=buf, width=WIDTH, highlight=False).print(*objects, **options)
    return buf.getvalue()


def table(title: str | None, headers: list[str], rows: list[list[str]], **col: Any) -> Table:
    t = Table(title=title, title_justify="left")
    for i, h in enumerate(headers):
        t.add_column(h, **(col if i else {"overflow": "fold", "no_wrap": True}))
    for r in rows:
        t.add_row(*r)
    return t


DRAWN = [  # tables like manymodels.console's: drawn here, exactly as rich draws them
    table("runs (newest first)", ["run", "kind", "started", "ended"],
          [["af49b3f03329", "train", "2026-11-30T23:06:58", ""], ["b", "retrain", "—", "x"]]),
    table("partitions 1–3 of 10000 (mean_absolute_error on validation)",
          ["partition", "version", "estimator", "model", "skill"],
          [["pid=1", "2", "Ridge", "0.4", "+60%"], ["__fallback__", "—", "—", "—", "—"],
           ["store=2,brand=tropicana", "12", "RandomForestRegressor", "98.73", "-3%"]],
          justify="right"),
    table("t", ["a"], [["x"]]),
    table("a title exactly as wide", ["column one", "b"], [["x" * 15, "y"]]),
    table("versions", ["params"], [['{"alpha": 0.1, "x": "a:b"}'], ['{}']]),
    table("x", ["at"], [["12:00:00 and 10:30"], ["… more"]]),
    table("a title much wider than its table", ["a"], [["x"]]),
    table("candidates tried for version 1 (mean_absolute_error on validation)",
          ["candidate", "params", "mean_absolute_error", "error"], [["Ridge", "{}", "0.4", ""]]),
    table("one  two   three four", ["ab", "cd"], [["x", "y"]]),
    table("abcdefg hij", ["abcdefg"], [["x"]]),
    table("t", ["a"], [["tab\there"]]),  # a cell is one line: "tab\\there"
    table("t", ["a"], [["two\nlines"]]),
]  # fmt: skip
LEFT_TO_RICH = [  # rich would wrap, style, or read markup / emoji: left to it
    table("t", ["a"], []),  # no rows
    table("a_title_word_wider_than_its_table", ["a"], [["x"]]),  # rich folds the word
    table("t", ["a", "b"], [["x" * 100, "y" * 70]]),  # wider than the console
    table("t", ["a"], [["[bold]x[/]"]]),
    table("t", ["a"], [["x :smile: y"]]),
    table("t", ["a"], [["hundred :100: points"]]),
    table("t", ["a"], [["wide 表"]]),
    table("t", ["a", "b"], [["x", "y"]], justify="center"),
    table("t", ["a", "b"], [["x", "y"]], style="red"),
]


@pytest.mark.parametrize("t", DRAWN, ids=range(len(DRAWN)))
def test_tables_it_draws_are_drawn_as_rich_draws_them(t: Table) -> None:
    drawn = t.plain(WIDTH)
    assert drawn is not None
    assert drawn == rich_text(t.to_rich())


@pytest.mark.parametrize("t", LEFT_TO_RICH, ids=range(len(LEFT_TO_RICH)))
def test_tables_rich_would_change_are_left_to_rich(t: Table) -> None:
    assert t.plain(WIDTH) is None


@pytest.mark.parametrize(
    "line",
    [
        "run [bold]af49b3f03329[/] completed: 0 failed, 34 trained",
        "[bold]run x[/] (train) — completed",
        "  spec        store-sales (sha256 0123456789ab…)",
        "  started     2026-11-30T23:06:58.042994+00:00",
        "[bold red]3 failed[/], 1 trained",
        "[yellow]warning:[/] something",
        "x" * WIDTH,
        "x" * (WIDTH + 1),  # rich wraps it
        "a [link] b",
        "two\nlines",
        "smile :smile:",
        "trailing spaces   ",
    ],
)
def test_lines_are_printed_as_rich_prints_them(
    line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    LazyConsole(highlight=False, width=WIDTH).print(line)
    assert capsys.readouterr().out == rich_text(line)


def test_a_terminal_gets_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    """Styles on a terminal, and wherever rich might think it writes to one: not plain."""
    console = LazyConsole(highlight=False, width=WIDTH)
    assert console._plain_width() == WIDTH
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert console._plain_width() is None
    assert LazyConsole(highlight=False, width=None)._plain_width() is None


def test_random_titles_and_cells_are_drawn_as_rich_draws_them() -> None:
    """Titles broken over lines at every position a word can end, cells of every width."""
    rng = random.Random(13)
    words = ["a", "ab", "version", "(mean_absolute_error", "on", "validation)", "—", "x" * 12]
    drawn = 0
    for _ in range(150):
        title = (" " * rng.randint(1, 2)).join(rng.choice(words) for _ in range(rng.randint(1, 9)))
        n = rng.randint(1, 4)
        rows = [["y" * rng.randint(0, 9) for _ in range(n)] for _ in range(rng.randint(1, 3))]
        t = table(title, [rng.choice(words) for _ in range(n)], rows, justify=rng.choice(
            ["left", "right"]))  # fmt: skip
        plain = t.plain(WIDTH)
        if plain is not None:
            drawn += 1
            assert plain == rich_text(t.to_rich()), title
    assert drawn > 120


LITERAL = {"highlight": False, "markup": False, "emoji": False}  # manymodels.console's


@pytest.mark.parametrize(
    ("line", "options"),
    [
        ("run [bold]af49b3f03329[/] completed", {"markup": True}),
        ("a reason [bold]as written[/bold] :x:", {}),
        ("a reason [bold]as written[/bold] :x:", {"soft_wrap": True}),
        ("x" * (WIDTH + 1), {"soft_wrap": True}),  # one line, never folded
        ("x" * (WIDTH + 1), {}),
        ("plain words", {"markup": True, "soft_wrap": True}),
    ],
)
def test_the_console_s_lines_are_printed_as_rich_prints_them(
    line: str, options: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """manymodels.console prints text as written (no markup, no emoji) unless a line of our
    own styles asks for markup; drawn here or by rich, the same characters."""
    LazyConsole(**LITERAL, width=WIDTH).print(line, **options)
    buf = io.StringIO()
    Console(file=buf, width=WIDTH, **LITERAL).print(line, **options)  # type: ignore[arg-type]
    assert capsys.readouterr().out == buf.getvalue()


def test_the_console_s_tables_show_cells_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    cells = ["[bold]x[/bold]", "a :x: b", "two\nlines"]
    LazyConsole(**LITERAL, width=WIDTH).print(table("t [b]", ["a"], [[c] for c in cells]))
    out = capsys.readouterr().out
    assert "t [b]" in out and "[bold]x[/bold]" in out and ":x:" in out, out
    assert "two\\nlines" in out and len(out.splitlines()) == 8, out  # title, header, 3 rows, rules
