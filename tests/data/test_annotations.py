"""The LRS annotation parser on the published forms."""

from __future__ import annotations

from avsync.data.annotations import Annotation, WordTiming, format_annotation, parse_annotation

LRS3 = ("Text:  SO WE'RE GOING\nConf:  4\nRef:   00j9bKdiOjk\n\nFRAME \tX \tY \tW \tH \n"
        "000025 \t0.422 \t0.167 \t0.203 \t0.334 \n000026 \t0.423 \t0.168 \t0.203 \t0.334 \n\n"
        "WORD START END ASDSCORE\nSO 0.43 0.52 4.8\nWE'RE 0.52 0.70 5.1\nGOING 0.70 0.95 5.3\n")


def test_lrs3_file_with_tab_separated_frame_table() -> None:
    annotation = parse_annotation(LRS3)
    assert annotation.text == "SO WE'RE GOING" and annotation.ref == "00j9bKdiOjk"
    assert [f.frame for f in annotation.frames] == [25, 26]
    assert annotation.frames[0].w == 0.203
    assert annotation.words[1] == WordTiming("WE'RE", 0.52, 0.70, 5.1)


def test_word_table_then_frame_table() -> None:
    content = ("Text:  HI\nConf:  1\n\nWORD START END ASDSCORE\nHI 0.10 0.30 2.0\n\n"
               "FRAME \tX \tY \tW \tH \n000001 \t0.1 \t0.2 \t0.3 \t0.4 \n")
    annotation = parse_annotation(content)
    assert len(annotation.words) == 1 and len(annotation.frames) == 1


def test_format_then_parse_is_the_identity() -> None:
    annotation = Annotation("A B", 3.0, (WordTiming("A", 0.0, 0.25, 1.0),
                                         WordTiming("B", 0.3, 0.61, 2.5)))
    assert parse_annotation(format_annotation(annotation)) == annotation
