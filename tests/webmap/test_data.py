"""Data management pages: upload → validation report → confirm → history → restore."""

from __future__ import annotations

import io
import re
import time
import zipfile

import pytest

from webmap import accounts
from webmap.uploads import STAGING_DIR, purge_expired, safe_filename

# row 3: 经度 'abc' and 学段 'abc'; row 4: 学段 '大学' (universities are not protected schools)
BAD_SCHOOLS = (
    "名称,学段,经度,纬度\n"
    "甲小学,小学,114.27,30.55\n"
    "乙中学,初中,114.28,30.56\n"
    "丙学校,abc,abc,30.57\n"
    "丁大学,大学,114.29,30.58\n"
).encode()
GOOD_SCHOOLS = "名称,学段,经度,纬度\n甲小学,小学,114.27,30.55\n乙中学,初中,114.28,30.56\n".encode()
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def analyst(make_user, login):
    make_user("ana", "analyst")
    login("ana")
    return "ana"


def _upload(
    client, data: bytes, name: str = "schools.csv", kind: str = "schools", datum: str = "wgs84", **extra
):
    form = {"kind": kind, "datum": datum, "file": (io.BytesIO(data), name), **extra}
    return client.post("/data/upload", data=form, content_type="multipart/form-data")


def _staged_folders(workspace) -> list:
    root = workspace.path / STAGING_DIR
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _cells(html: str, table_id: str) -> list[list[str]]:
    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0].split("<tbody>", 1)[1]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, flags=re.S)
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows
    ]


def test_viewer_sees_the_page_but_cannot_upload(client, make_user, login, workspace):
    make_user("vic", "viewer", locale="en")
    login("vic")
    page = client.get("/data/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Importing data needs the analyst role" in html and 'id="upload-form"' not in html
    assert _upload(client, GOOD_SCHOOLS).status_code == 403
    assert _staged_folders(workspace) == []
    assert client.get("/data/history/schools").status_code == 200


def test_signed_out_upload_goes_to_login(client, workspace):
    response = _upload(client, GOOD_SCHOOLS)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_bad_csv_shows_the_report_row_by_row_and_changes_nothing(client, analyst, workspace):
    response = _upload(client, BAD_SCHOOLS, name="学校.csv")
    assert response.status_code == 302
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    problems = _cells(html, "problems")  # in the user's language (Chinese)
    assert ["3", "经度", "abc", "不是数字"] in problems
    assert any(
        r[:3] == ["3", "学段", "abc"] and r[3].startswith("未知取值；可选：primary (小学)") for r in problems
    )
    assert any(r[:3] == ["4", "学段", "大学"] for r in problems)
    assert len(problems) == 3
    summary = dict(re.findall(r'data-summary="(\w+)">(\d+)<', html))
    assert summary == {"read": "4", "valid": "2", "rejected": "2", "problems": "3"}
    assert [r[1] for r in _cells(html, "preview")] == ["甲小学", "乙中学"]
    assert "学校.csv" in html
    # staged inside the workspace under a random folder name; the layer store is untouched
    (folder,) = _staged_folders(workspace)
    assert len(folder.name) >= 24 and (folder / "学校.csv").read_bytes() == BAD_SCHOOLS
    assert workspace.current_versions() == {} and workspace.history() == []
    # the data page lists it as waiting, with what the check found
    index = client.get("/data/").get_data(as_text=True)
    facts = index.split("学校.csv", 1)[1].split("</li>", 1)[0]
    assert "读取 4 行" in facts and "3 个问题" in facts


def test_the_report_speaks_the_users_language_and_the_api_stays_english(client, make_user, login, workspace):
    # row 2: lon/lat swapped; row 3: a negative terminal count and an unknown status
    cafes = "名称,经度,纬度,状态,终端数\n甲网吧,108.94,34.25,正常,80\n乙网吧,34.26,108.95,正常,60\n丙网吧,108.96,34.27,营业中,-5\n"
    make_user("eng", "analyst", locale="en")
    login("eng")
    html = client.get(_upload(client, cafes.encode(), kind="net_cafes").headers["Location"]).get_data(
        as_text=True
    )
    english = {tuple(r[:2]): r[3] for r in _cells(html, "problems")}
    assert (
        english[("2", "经度/纬度")]
        == "outside China (73–136°E, 3–54°N) when read as wgs84; lon/lat look swapped"
    )
    assert english[("3", "终端数")] == "must not be negative"
    assert english[("3", "状态")].startswith("unknown value; allowed: licensed (正常")
    make_user("zhang", "analyst")
    login("zhang")
    html = client.get(_upload(client, cafes.encode(), kind="net_cafes").headers["Location"]).get_data(
        as_text=True
    )
    chinese = {tuple(r[:2]): r[3] for r in _cells(html, "problems")}
    (first,) = _cells(html, "preview")
    assert first[1] == "甲网吧" and "持证" in first  # the stored 'licensed', in words
    assert chinese == {
        ("2", "经度/纬度"): "按 wgs84 解读时位于中国范围（东经 73–136°、北纬 3–54°）之外；经纬度似乎填反了",
        ("3", "终端数"): "不能为负数",
        ("3", "状态"): "未知取值；可选：" + english[("3", "状态")].split("allowed: ", 1)[1],
    }
    # scripts read the same English text from the API, with the template and values to translate it
    form = {"file": (io.BytesIO(cafes.encode()), "cafes.csv"), "crs": "wgs84"}
    response = client.post("/api/v1/import/net_cafes", data=form, content_type="multipart/form-data")
    assert response.status_code == 400 and workspace.current_versions() == {}
    body = response.get_json()
    negative = next(p for p in body["problems"] if p["field"] == "终端数")
    assert negative["expected"] == "must not be negative" and negative["template"] == "must not be negative"
    swapped = next(p for p in body["problems"] if p["row"] == 2)
    assert swapped["params"] == {"datum": "wgs84"} and swapped["expected"] == english[("2", "经度/纬度")]


def test_confirm_all_or_nothing_imports_and_audits(client, analyst, workspace):
    location = _upload(client, GOOD_SCHOOLS).headers["Location"]
    html = client.get(location).get_data(as_text=True)
    assert 'value="all"' in html and 'value="partial"' not in html
    response = client.post(location + "/import", data={"mode": "all"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/data/history/schools")
    assert workspace.current_versions() == {"schools": 1}
    assert sorted(workspace.read("schools")["name"]) == ["乙中学", "甲小学"]
    (record,) = workspace.history("schools")
    assert (record.user, record.file_name, record.rows_imported) == ("ana", "schools.csv", 2)
    entry = accounts.list_audit(workspace, action="import")[0]
    assert entry.user == "ana" and entry.detail.startswith("schools version 1 from schools.csv")
    assert _staged_folders(workspace) == []  # nothing left to offer
    history = client.get("/data/history/schools").get_data(as_text=True)
    assert record.file_sha256[:12] in history and "schools.csv" in history


def test_all_or_nothing_with_problems_imports_nothing(client, analyst, workspace):
    location = _upload(client, BAD_SCHOOLS).headers["Location"]
    response = client.post(location + "/import", data={"mode": "all"})
    assert response.status_code == 400
    assert workspace.current_versions() == {}
    assert accounts.list_audit(workspace, action="import") == []


def test_partial_import_writes_the_rejected_rows_for_download(client, analyst, workspace):
    location = _upload(client, BAD_SCHOOLS, name="bad.csv").headers["Location"]
    response = client.post(location + "/import", data={"mode": "partial"})
    assert response.status_code == 302 and response.headers["Location"].endswith(location)
    assert workspace.counts()["schools"] == 2
    (record,) = workspace.history("schools")
    assert (record.rows_read, record.rows_imported, record.rows_rejected) == (4, 2, 2)
    page = client.get(location).get_data(as_text=True)
    assert 'id="imported"' in page and "/rejected" in page
    download = client.get(location + "/rejected")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    text = download.get_data().decode("utf-8-sig")
    download.close()
    lines = text.splitlines()
    assert lines[0] == "row,reason,名称,学段,经度,纬度"
    assert [line.split(",")[0] for line in lines[1:]] == ["3", "4"]
    # the reasons in the user's language (the command line writes them in English)
    assert "经度 = 'abc': 不是数字" in text and "学段 = '大学': 未知取值；可选：primary (小学)" in text
    assert "not a number" not in text and "丁大学" in text
    assert "valid rows only" in accounts.list_audit(workspace, action="import")[0].detail
    # a second confirm does not import again
    client.post(location + "/import", data={"mode": "partial"})
    assert workspace.current_versions() == {"schools": 1}


def test_restore_works_and_is_audited(client, analyst, workspace):
    for data in (GOOD_SCHOOLS, GOOD_SCHOOLS.replace("甲小学".encode(), "戊小学".encode())):
        client.post(_upload(client, data).headers["Location"] + "/import", data={"mode": "all"})
    assert workspace.current_versions() == {"schools": 2}
    history = client.get("/data/history/schools").get_data(as_text=True)
    assert "/data/history/schools/restore/1" in history and "/data/history/schools/restore/2" not in history
    confirm = client.get("/data/history/schools/restore/1")
    assert confirm.status_code == 200 and 'id="restore-form"' in confirm.get_data(as_text=True)
    assert workspace.current_versions() == {"schools": 2}  # the confirmation page changes nothing
    response = client.post("/data/history/schools/restore/1")
    assert response.status_code == 302
    assert workspace.current_versions() == {"schools": 1}
    assert "甲小学" in set(workspace.read("schools")["name"])
    assert workspace.history("schools")[0].action == "restore"
    entry = accounts.list_audit(workspace, action="restore")[0]
    assert entry.user == "ana" and entry.detail == "schools version 1 restored (version 2 was current)"
    assert client.get("/data/history/schools/restore/7").status_code == 404


def test_restore_needs_analyst(client, make_user, login, workspace):
    make_user("vic", "viewer")
    login("vic")
    assert client.post("/data/history/schools/restore/1").status_code == 403


def test_confirm_form_needs_its_csrf_token(config, make_user, csrf_from):
    from webmap import create_app

    config["WTF_CSRF_ENABLED"] = True
    app = create_app(config)
    client = app.test_client()
    make_user("ana", "analyst")
    token = csrf_from(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"name": "ana", "password": "correct horse 1", "csrf_token": token})
    page = client.get("/data/").get_data(as_text=True)
    token = csrf_from(page)
    form = {
        "kind": "schools",
        "datum": "wgs84",
        "csrf_token": token,
        "file": (io.BytesIO(GOOD_SCHOOLS), "s.csv"),
    }
    location = client.post("/data/upload", data=form, content_type="multipart/form-data").headers["Location"]
    report = client.get(location).get_data(as_text=True)
    from layers.store import Workspace

    ws = Workspace.open(config["WORKSPACE"])
    assert client.post(location + "/import", data={"mode": "all"}).status_code == 400
    assert client.post(location + "/import", data={"mode": "all", "csrf_token": "forged"}).status_code == 400
    assert ws.current_versions() == {}
    ok = client.post(location + "/import", data={"mode": "all", "csrf_token": csrf_from(report)})
    assert ok.status_code == 302 and ws.current_versions() == {"schools": 1}


def test_oversize_upload_is_refused_with_a_clear_message(config, make_user, workspace):
    from webmap import create_app

    config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    app = create_app(config)
    client = app.test_client()
    make_user("ana", "analyst", locale="en")
    client.post("/login", data={"name": "ana", "password": "correct horse 1"})
    big = GOOD_SCHOOLS + b"".join(f"校{i},小学,114.27,30.55\n".encode() for i in range(40_000))
    assert len(big) > 1024 * 1024
    # a hand-built body: werkzeug's test client would spool a large multipart body to a temp
    # file that nobody closes when the app refuses to read it
    boundary = "cm-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nschools\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + big
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = client.post(
        "/data/upload", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 413
    html = response.get_data(as_text=True)
    assert "The upload is larger than the limit of 1 MB." in html and 'id="upload-form"' in html
    assert _staged_folders(workspace) == []


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("layer.exe", b"MZ", "type '.exe' is not accepted"),
        ("layer.shp", b"\x00\x00\x27\x0a", "type '.shp' is not accepted"),
        ("layer.xlsx", b"not a zip", "is not a .xlsx file"),
        ("layer.gpkg", b"SQLite format 2", "is not a .gpkg file"),
        ("layer.csv", b"", "is empty"),
        ("layer.geojson", b'{"type":\x00', "is not a text file"),
    ],
)
def test_uploads_are_checked_before_parsing(client, analyst, workspace, name, data, message):
    response = _upload(client, data, name=name)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True).replace("&#39;", "'")
    assert _staged_folders(workspace) == []


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_zip_bomb_guard_counts_members_and_unpacked_size(config, make_user):
    from webmap import create_app

    config.update(DATA_ZIP_MAX_MEMBERS=5, DATA_ZIP_MAX_UNCOMPRESSED=1024 * 1024)
    client = create_app(config).test_client()
    make_user("ana", "analyst")
    client.post("/login", data={"name": "ana", "password": "correct horse 1"})
    bomb = _zip({"a.shp": b"\x00" * (2 * 1024 * 1024)})  # 2 MB of zeros packs to about 2 kB
    assert len(bomb) < 5000
    html = _upload(client, bomb, name="bomb.zip").get_data(as_text=True)
    assert "unpacks to more than 1 MB (at least 2.0 MB); refused" in html
    many = _zip({f"f{i}.txt": b"x" for i in range(6)})
    assert "holds 6 members; at most 5 allowed" in _upload(client, many, name="many.zip").get_data(
        as_text=True
    )
    sneaky = _zip({"../evil.shp": b"x"})
    assert "has an unsafe path" in _upload(client, sneaky, name="sneaky.zip").get_data(as_text=True)


def test_hostile_venue_name_is_shown_escaped(client, analyst, workspace):
    csv = f"名称,经度,纬度,状态\n{HOSTILE},114.27,30.55,正常\n好网吧,114.28,30.56,营业中\n".encode()
    location = _upload(client, csv, name="cafes.csv", kind="net_cafes").headers["Location"]
    html = client.get(location).get_data(as_text=True)
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    client.post(location + "/import", data={"mode": "partial"})
    assert workspace.counts()["net_cafes"] == 1
    history = client.get("/data/history/net_cafes").get_data(as_text=True)
    assert HOSTILE not in history


def test_expired_staged_uploads_are_deleted_on_the_next_visit(client, analyst, workspace, app):
    _upload(client, GOOD_SCHOOLS)
    (folder,) = _staged_folders(workspace)
    with app.app_context():
        assert purge_expired(workspace.path, ttl_s=3600) == 0
        assert purge_expired(workspace.path, ttl_s=3600, now=time.time() + 3601) == 1
    assert not folder.exists()
    _upload(client, GOOD_SCHOOLS)
    app.config["DATA_STAGING_TTL_S"] = -1
    client.get("/data/")
    assert _staged_folders(workspace) == []


def test_another_users_staged_upload_is_not_found(client, analyst, make_user, login, workspace):
    location = _upload(client, GOOD_SCHOOLS).headers["Location"]
    make_user("bob", "analyst")
    login("bob")
    assert client.get(location).status_code == 404
    assert client.post(location + "/import", data={"mode": "all"}).status_code == 404
    assert client.get("/data/staged/..%2F..%2Fetc").status_code == 404


@pytest.mark.parametrize(
    ("given", "expected"),
    [("学校.csv", "学校.csv"), ("../../etc/passwd.csv", "passwd.csv"), ("C:\\x\\y.XLSX", "y.xlsx"),
     ("a b;c.csv", "a_b_c.csv"), ("..csv", "upload.csv"), ("", "upload")],
)  # fmt: skip
def test_safe_filename(given, expected):
    assert safe_filename(given) == expected


def test_stage_upload_counts_bytes_itself_when_no_length_was_declared(app, workspace):
    from webmap.uploads import UploadError, stage_upload

    app.config["MAX_CONTENT_LENGTH"] = 1000
    with app.app_context():
        with pytest.raises(UploadError, match="larger than the limit") as err:
            stage_upload(io.BytesIO(b"a,b\n" * 300), "big.csv", workspace_path=workspace.path)
        assert err.value.status == 413
        staged = stage_upload(
            io.BytesIO(GOOD_SCHOOLS), "ok.csv", workspace_path=workspace.path, meta={"k": 1}
        )
    assert _staged_folders(workspace) == [staged.folder]
    assert staged.path.read_bytes() == GOOD_SCHOOLS and staged.meta["k"] == 1


def test_table_without_a_datum_and_unreadable_files_get_a_file_level_report(client, analyst, workspace):
    html = client.get(_upload(client, GOOD_SCHOOLS, datum="").headers["Location"]).get_data(as_text=True)
    (problem,) = _cells(html, "problems")
    assert problem[:3] == ["—", "—", "—"] and problem[3].startswith("未指定坐标系")
    assert 'value="all"' not in html and 'value="partial"' not in html
    broken = client.get(
        _upload(client, b'{"type": "FeatureCollection", oops', name="x.geojson").headers["Location"]
    )
    (problem,) = _cells(broken.get_data(as_text=True), "problems")
    assert problem[0] == "—" and problem[3]
    assert workspace.current_versions() == {}


def test_epsg_datum_is_taken_from_the_form(client, analyst, workspace):
    # CGCS2000 / 3-degree Gauss-Kruger CM 114E (EPSG:4547): easting 500000 lies on 114°E
    csv = "名称,学段,X,Y\n甲小学,小学,500000,3380000\n".encode()
    location = _upload(client, csv, datum="epsg", epsg="4547").headers["Location"]
    html = client.get(location).get_data(as_text=True)
    assert "EPSG:4547" in html and 'value="all"' in html
    client.post(location + "/import", data={"mode": "all"})
    point = workspace.read("schools").geometry.iloc[0]
    assert point.x == pytest.approx(114.0, abs=1e-9)
    assert _upload(client, csv, datum="epsg", epsg="abc").status_code == 400


def test_long_reports_keep_the_first_problems_and_count_them_all(client, analyst, workspace, monkeypatch):
    from webmap.views import data

    monkeypatch.setattr(data, "PROBLEMS_SHOWN", 2)
    html = client.get(_upload(client, BAD_SCHOOLS).headers["Location"]).get_data(as_text=True)
    assert len(_cells(html, "problems")) == 2
    assert dict(re.findall(r'data-summary="(\w+)">(\d+)<', html))["problems"] == "3"
    assert "共 3 个问题，显示前 2 个。" in html
    assert "学段: 2" in html and "经度: 1" in html  # counted over every problem
