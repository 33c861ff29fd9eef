from __future__ import annotations

from pathlib import Path

import pytest

from countylab.errors import ValidationFailed
from countylab.ingest.encoding import detect_encoding, transcode_to_utf8
from tests.ingest.ingest_helpers import write

TEXT = "姓名,乡镇\n张三,城关镇\n李四,东山乡\n"


def test_detects_utf8_bom_and_gbk(tmp_path: Path) -> None:
    assert detect_encoding(write(tmp_path / "a.csv", TEXT)) == "utf-8"
    assert detect_encoding(write(tmp_path / "b.csv", "\ufeff" + TEXT)) == "utf-8-sig"
    assert detect_encoding(write(tmp_path / "c.csv", TEXT, "gbk")) == "gb18030"
    assert detect_encoding(write(tmp_path / "d.csv", "a,b\n1,2\n")) == "utf-8"


def test_multibyte_char_cut_by_sample_end_is_still_utf8(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "名" * 1000)
    assert detect_encoding(path, sample_bytes=1000) == "utf-8"  # 1000 is not a multiple of 3


@pytest.mark.parametrize("payload", ["a,b\n".encode("utf-16"), b"\x00\x01\x02binary\xff\xfe"])
def test_utf16_and_binary_rejected(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(payload)
    with pytest.raises(ValidationFailed) as info:
        detect_encoding(path)
    assert info.value.details["reason"] == "encoding"
    assert "UTF-8" in info.value.message_zh and "GBK" in info.value.message_en


def test_transcode_gbk_streams_in_chunks(tmp_path: Path) -> None:
    source = write(tmp_path / "g.csv", TEXT * 50_000, "gbk")  # > 1 MiB, crosses chunk boundaries
    target = tmp_path / "u.csv"
    transcode_to_utf8(source, "gb18030", target)
    assert target.read_text("utf-8") == TEXT * 50_000


def test_transcode_reports_line_of_bad_bytes(tmp_path: Path) -> None:
    source = tmp_path / "g.csv"
    source.write_bytes(TEXT.encode("gbk") + b"\xff\xff,x\n")
    with pytest.raises(ValidationFailed) as info:
        transcode_to_utf8(source, "gb18030", tmp_path / "u.csv")
    assert info.value.details == {"reason": "encoding", "row": 4}
