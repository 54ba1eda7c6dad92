"""What a working command shows: a spinner on stderr for a person at a terminal, erased when the work ends,
and nothing at all for a script (a pipe, a file) or --json."""

from __future__ import annotations

import io

import pytest

from evergreen_cli.activity import working

ERASE_LINE = "\x1b[2K"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def a_real_terminal_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    for name in ("TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)


def test_at_a_terminal_it_says_what_happens_on_stderr_and_erases_it_after():
    stdout, stderr = Terminal(), Terminal()

    with working("starting the local stack", stdout=stdout, stderr=stderr) as activity:
        activity.update("creating the table")

    shown = stderr.getvalue()
    assert "creating the table" in shown
    assert shown.endswith(ERASE_LINE), "the last thing drawn erases the line"
    assert stdout.getvalue() == ""


def test_a_known_total_draws_a_count():
    stdout, stderr = Terminal(), Terminal()

    with working("moving messages", stdout=stdout, stderr=stderr) as activity:
        activity.counting("moving messages")(3, 8)

    assert "3/8" in stderr.getvalue()


def test_it_is_erased_when_the_work_is_interrupted():
    stdout, stderr = Terminal(), Terminal()

    with pytest.raises(KeyboardInterrupt), working("sweeping", stdout=stdout, stderr=stderr):
        raise KeyboardInterrupt

    assert stderr.getvalue().endswith(ERASE_LINE)


@pytest.mark.parametrize("tty_stdout, tty_stderr", [(False, False), (False, True), (True, False)])
def test_a_pipe_or_a_file_on_either_stream_gets_nothing(tty_stdout, tty_stderr):
    stdout = Terminal() if tty_stdout else io.StringIO()
    stderr = Terminal() if tty_stderr else io.StringIO()

    with working("sweeping", stdout=stdout, stderr=stderr) as activity:
        activity.update("still sweeping", completed=1, total=2)

    assert stderr.getvalue() == "" and stdout.getvalue() == ""


def test_json_output_gets_nothing_even_at_a_terminal():
    stdout, stderr = Terminal(), Terminal()

    with working("reading profiles", json_output=True, stdout=stdout, stderr=stderr) as activity:
        activity.update("read 500 profiles")

    assert stderr.getvalue() == ""
