"""A `page:` URL that serves a PDF is watched like a page, through `watchtower run --once`.

First poll: the PDF's text becomes the snapshot. A new version adds a paragraph: one
entry with the added lines, which alerts, and its archive copy is the PDF as served.
Then the same URL turns hostile (a compression bomb): the poll fails with its reason,
``watchtower status`` shows it, and nothing else stops.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.e2e.test_e2e_run_once import watchtower
from tests.evidence.test_fulltext_scoring import REPORT
from tests.pdfgen import make_pdf, report_pdf, zlib_bomb
from tests.support import LoopbackHTTP, Response, shipped_baseline_yaml

ADDED = (
    "Addendum. Since the report was submitted, China carried out the forced repatriation "
    "of a further sixty North Korean escapees, who face torture, enforced disappearance "
    "and detention in political prison camps. The Special Rapporteur urges all States to "
    "respect the principle of non-refoulement."
)


def pdf_response(body: bytes) -> Response:
    return Response(200, {"Content-Type": "application/pdf"}, body)


def write_config(tmp_path: Path, srv: LoopbackHTTP) -> Path:
    path = tmp_path / "watchtower.yaml"
    path.write_text(
        "\n".join(
            [
                f"store: sqlite:///{tmp_path}/watchtower.db",
                shipped_baseline_yaml(tmp_path),
                "fetch: {allow_private_addresses: true, timeout: 10s, per_host_interval: 0s}",
                "archive: {dir: archive}",
                "sources:",
                f"  - {{name: SR report, page: '{srv.url('/sr/report.pdf')}', every: 1h}}",
            ]
        )
        + "\n"
    )
    return path


def run(config: Path, *args: str) -> str:
    result = watchtower(*args, "--config", str(config), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_pdf_page_is_watched_and_a_hostile_version_ends_with_a_reason(
    http_server: LoopbackHTTP, tmp_path: Path
) -> None:
    from watchtower.store import Store

    config = write_config(tmp_path, http_server)
    http_server.routes["/sr/report.pdf"] = pdf_response(report_pdf(REPORT))
    run(config, "run", "--once")
    with Store.open(f"sqlite:///{tmp_path}/watchtower.db") as store:
        assert store.counts()["items"] == 0  # the first poll only takes the snapshot

    second = report_pdf([*REPORT, ADDED])
    http_server.routes["/sr/report.pdf"] = pdf_response(second)
    run(config, "run", "--once")
    with Store.open(f"sqlite:///{tmp_path}/watchtower.db") as store:
        alerts = store.list_alerts()
    assert len(alerts) == 1
    assert any("further sixty North Korean escapees" in line for line in alerts[0].diff)
    archive = alerts[0].archive
    assert archive is not None and Path(archive["path"]).is_file()
    assert archive["sha256"] == hashlib.sha256(second).hexdigest()

    http_server.routes["/sr/report.pdf"] = pdf_response(
        make_pdf([["x"]], extra_stream=zlib_bomb(1024**3))
    )
    run(config, "run", "--once")
    status = run(config, "status")
    assert "SR report" in status
    assert "a PDF stream inflates past 16 MB (a compression bomb?)" in status
