"""``watchtower score`` takes the store's feedback into account (so its effect can be
measured): ``feedback import`` of judged items moves later scores, and says so."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from watchtower.cli import cli

ROOT = Path(__file__).resolve().parents[2]
ITEM = {
    "id": "x",
    "title": "Pyongyang stages public executions over smuggled South Korean dramas",
    "summary": "Residents were made to watch as young people were shot for watching "
    "South Korean films, a defector group in Seoul said.",
}
JUDGED = [
    ("North Korea executes teenagers for sharing South Korean dramas", 2),
    ("Youths publicly shot in Hyesan for watching foreign films", 2),
    ("North Korea holds public trial for watching K-dramas, executes two", 2),
    ("Seoul: North executed people for distributing South Korean videos", 2),
    ("North Korea fires ballistic missile into the sea", 0),
    ("North Korea and China trade rises for third month", 0),
    ("Kim Jong Un inspects new destroyer at Nampo shipyard", 0),
    ("North Korea launches spy satellite, Seoul says", 0),
]


def _score(config: Path) -> dict[str, object]:
    result = CliRunner().invoke(
        cli, ["score", "--config", str(config), "--input", "-"], input=json.dumps(ITEM) + "\n"
    )
    assert result.exit_code == 0, result.output
    out: dict[str, object] = json.loads(result.stdout)
    return out


def test_feedback_import_moves_later_scores_of_watchtower_score(tmp_path: Path) -> None:
    config = tmp_path / "watchtower.yaml"
    config.write_text(
        f"store: sqlite:///{tmp_path}/watchtower.db\n"
        f"baseline:\n  seeds: {ROOT / 'seeds'}\n  cache: {tmp_path / 'baseline.json'}\n"
    )
    before = _score(config)
    judged = tmp_path / "judged.jsonl"
    judged.write_text(
        "".join(json.dumps({"title": t, "label": label}) + "\n" for t, label in JUDGED)
    )
    result = CliRunner().invoke(cli, ["feedback", "import", str(judged), "--config", str(config)])
    assert result.exit_code == 0, result.output
    after = _score(config)
    assert float(after["score"]) > float(before["score"])  # type: ignore[arg-type]
    explanation = after["explanation"]
    assert isinstance(explanation, dict) and "feedback" in explanation["summary"]
