from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
import zlib
from collections.abc import Callable

import pytest
from openpyxl import Workbook
from PIL import Image

from countylab.airlock.checks import CheckContext, CheckStatus, FileKind, OutputFile, filetype
from countylab.airlock.checks.sniff import Content, sniff

MakeFile = Callable[[str, bytes | str], OutputFile]


def xlsx_bytes() -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["村", "人数"])
    ws.append(["东村", 120])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buf, format="PNG")
    return buf.getvalue()


def safetensors_bytes() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\x00\x00\x80\x3f"


def torch_zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model/data.pkl", pickle.dumps({"w": 1}))
        zf.writestr("model/data/0", b"\x00" * 16)
    return buf.getvalue()


GOOD = [
    ("t.csv", "村,人数\n东村,120\n", FileKind.csv),
    ("t.xlsx", xlsx_bytes(), FileKind.xlsx),
    ("p.png", png_bytes(), FileKind.png),
    ("c.svg", '<svg xmlns="http://www.w3.org/2000/svg"><text>x</text></svg>', FileKind.svg),
    ("run.log", "step 1 done\nstep 2 done\n", FileKind.text),
    ("notes.txt", "计数结果见表", FileKind.text),
    ("m.json", '{"auc": 0.81}', FileKind.json),
]


@pytest.mark.parametrize(("name", "content", "kind"), GOOD)
def test_allowed_types_pass(make_file: MakeFile, name: str, content: bytes | str, kind: FileKind) -> None:
    result = filetype.run(make_file(name, content), CheckContext())
    assert result.status is CheckStatus.passed, result.messages_en
    assert result.details["kind"] == kind.value


MODELS = [
    ("model.csv", pickle.dumps({"coef": [1.0, 2.0]}), "pickle"),
    ("model.txt", pickle.dumps([1, 2], protocol=0), "pickle"),
    ("model.csv", zlib.compress(pickle.dumps({"coef": [1.0]})), "joblib"),
    ("weights.csv", safetensors_bytes(), "safetensors"),
    ("weights.csv", torch_zip_bytes(), "PyTorch"),
    ("m.json", b"\x08\x07\x12\x07pytorch\x1a\x032.1:\x10\n\x05input", "ONNX"),
    ("model.pkl", "looks like text", "text"),
]


@pytest.mark.parametrize(("name", "content", "detail"), MODELS)
def test_model_files_are_never_releasable(
    make_file: MakeFile, name: str, content: bytes | str, detail: str
) -> None:
    result = filetype.run(make_file(name, content), CheckContext())
    assert result.status is CheckStatus.fail
    assert result.details["reason"] == "model"
    assert detail.lower() in result.details["format"].lower()
    assert any("register it as a model instead" in m for m in result.messages_en)
    assert any("登记为模型" in m for m in result.messages_zh)


DISGUISED = [
    ("result.csv", b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64),
    ("result.csv", b"MZ\x90\x00" + b"\x00" * 64),
    ("chart.png", xlsx_bytes()),
    ("table.xlsx", png_bytes()),
    ("data.json", "not json at all"),
    ("chart.svg", "<html><script>x</script></html>"),
    ("table.csv", b"PAR1" + b"\x00" * 32),
    ("table.csv", b"\x1f\x8b\x08\x00" + b"\x00" * 32),
    ("pic.png", "村,人数\n"),
]


@pytest.mark.parametrize(("name", "content"), DISGUISED)
def test_disguised_content_fails(make_file: MakeFile, name: str, content: bytes | str) -> None:
    result = filetype.run(make_file(name, content), CheckContext())
    assert result.status is CheckStatus.fail
    assert result.details["reason"] == "content_mismatch"


def test_types_outside_the_list_fail(make_file: MakeFile) -> None:
    for name in ("script.py", "report.pdf", "noext"):
        result = filetype.run(make_file(name, "print(1)\n"), CheckContext())
        assert result.status is CheckStatus.fail
        assert result.details["reason"] == "type_not_allowed"


def test_size_cap_per_kind(make_file: MakeFile) -> None:
    f = make_file("big.csv", "a,b\n" + "1,2\n" * 100)
    context = CheckContext(size_caps={**CheckContext().size_caps, FileKind.csv: 100})
    result = filetype.run(f, context)
    assert result.status is CheckStatus.fail and result.details["reason"] == "too_large"
    assert filetype.run(f, CheckContext()).status is CheckStatus.passed


def test_sniff_never_unpickles() -> None:
    class Boom:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("unpickled!",))

    assert sniff(pickle.dumps(Boom())).content is Content.model


def test_checks_are_a_pluggable_list_of_modules() -> None:
    from countylab.airlock.checks import CHECKS

    names = [c.name for c in CHECKS]
    assert names[0] == "file_type"  # first: no other parser sees a file it refuses
    assert {"table_format", "table_sdc", "pii_scan", "leakage_scan", "images"} <= set(names)
