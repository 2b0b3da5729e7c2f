"""Floats and uninformative commands removed, formatting text kept; the rules file is the product's."""
import pytest

from pipelines.latex.commands import CommandRules, clean_commands


@pytest.fixture(scope="module")
def rules():
    return CommandRules.load()


def test_rules_file_has_over_a_hundred_entries(rules):
    n = len(rules.drop_environments) + len(rules.unwrap_environments) + len(rules.drop_commands) + len(
        rules.keep_text_commands)
    assert n >= 100 and rules.version == "latex-commands-v2"


def test_floats_go_with_their_content_text_commands_keep_their_text(rules):
    tex = ("Intro \\textbf{bold \\emph{5G}} and \\href{https://x.org}{the link}.\\vspace{2mm}\n"
           "\\begin{figure*}[t]\\centering\\includegraphics[width=\\linewidth]{f.pdf}"
           "\\begin{tikzpicture}\\draw (0,0);\\end{tikzpicture}\\caption{A figure}\\end{figure*}\n"
           "\\begin{center}\\begin{minipage}[t]{0.4\\linewidth}Kept text\\end{minipage}\\end{center}\n"
           "\\begin{table}\\begin{tabular}{cc}a&b\\end{tabular}\\end{table}"
           "$x = \\mathbf{h}^H y$ \\newline [see 3] \\linebreak[4]end \\emph{x} [1]")
    warnings: list[str] = []
    out, floats = clean_commands(tex, rules, warnings)
    assert out == ("Intro bold 5G and the link.\n\nKept text\n"
                   "$x = \\mathbf{h}^H y$  [see 3] end x [1]")
    assert floats == 2 and not warnings


def test_unclosed_float_and_malformed_commands_are_best_effort(rules):
    warnings: list[str] = []
    out, floats = clean_commands("A \\begin{figure} B \\textbf{unclosed", rules, warnings)
    assert out == "A  B \\textbf{unclosed" and floats == 0 and "never closed" in warnings[0]


def test_bad_rules_file_names_the_format(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("drop_commands: {vspace: two}\n")
    with pytest.raises(ValueError, match="bad command rules"):
        CommandRules.load(bad)
