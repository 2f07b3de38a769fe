"""The adapter's log lines: a long note is cut in the log, its table keeps it whole."""

from ctc_qpcr.adapter import NOTE_LOG_CHARS, logged_note


def test_short_note_is_logged_whole():
    note = "geNorm: 2 sample(s) left out (a candidate gene not detected): P01, P02"
    assert logged_note(note, "results/normalised/notes.tsv") == note


def test_long_note_is_cut_after_a_whole_name_and_says_how_many_follow():
    names = [f"HD{i:04d}" for i in range(1000)]
    note = "geNorm: 1000 sample(s) left out (a candidate gene not detected): " + ", ".join(names)
    line = logged_note(note, "results/normalised/notes.tsv")
    assert len(line) < NOTE_LOG_CHARS + 80
    head, tail = line.split(", … (")
    shown = head.split("detected): ", 1)[1].split(", ")
    assert shown == names[: len(shown)]  # whole names, in order, none cut in half
    assert tail == f"{len(names) - len(shown)} more; the whole note: results/normalised/notes.tsv)"


def test_long_note_without_a_list_is_cut_at_the_limit():
    note = "x" * (NOTE_LOG_CHARS + 50)
    line = logged_note(note, "t.tsv")
    assert line.startswith("x" * NOTE_LOG_CHARS + ", … (0 more")
