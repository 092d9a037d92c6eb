"""`ko-hypervl tokenizer sweep`: each knob point's tokens on the LM text beside the plain-BPE twin's, in one run."""

import json
from pathlib import Path

import pytest

from ko_hypervl.cli import main
from ko_hypervl.tokenization.sweep import Sweep, format_sweep, parse_knob_point
from ko_hypervl.tokenization.tradeoff import KnobPoint

ROOT = Path(__file__).resolve().parents[1]
LINES = [
    "학교에 갔었다고 했잖아요.",
    "오늘 서울의 최고 기온은 27도로 어제보다 3도 높겠습니다.",
    "정부는 내년 예산안을 국회에 제출했다.",
]


def test_sweep_prints_each_point_beside_the_twin_and_counts_the_lm_stream(tmp_path, capsys):
    """A throwaway 1,500-token sweep: one row per point and the twin, JSON, cached tokenizers, and tokens/char
    counted as the LM stage's stream (each document's ids, then one EOS)."""
    from tokenizers import Tokenizer

    from ko_hypervl.evaluation.language import held_out_texts

    text = tmp_path / "eval.txt"
    text.write_text("\n".join(LINES * 4), encoding="utf-8")
    cache, out = tmp_path / "cache", tmp_path / "sweep.json"
    args = ["tokenizer", "sweep", "--points", "0.00+0.30", "0.10+0.20", "--vocab-size", "1500",
            "--train-lines", "3000", "--max-chars", "4000", "--text", str(text), "--speed-seconds", "0.05",
            "--cache-dir", str(cache), "--json-out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| 0.00 + 0.30 |" in printed and "| 0.10 + 0.20 |" in printed
    assert "| plain BPE twin | " in printed and "- fewer tokens than the twin" in printed
    assert "(chosen)" not in printed   # the bundled tokenizer has 32,000 tokens, not 1,500

    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["settings"]["points"] == ["0.00+0.30", "0.10+0.20"]
    rows = Sweep.from_dict(record).rows
    assert [r.point for r in rows] == [KnobPoint("morphemes", 0.0, 0.3), KnobPoint("morphemes", 0.1, 0.2), None]
    assert all(r.score.round_trip == 1.0 and r.score.lines == 12 for r in rows)
    twin_row = rows[-1]
    assert f"| plain BPE twin | {twin_row.tokens_per_char:.4f} | 1.0000 |" in printed

    docs = [t for t in held_out_texts(None, "test", 4000) if t.strip()]
    assert twin_row.lm_chars == sum(map(len, docs))
    twin = Tokenizer.from_file(str(cache / "knob-plain-1500.json"))
    assert twin_row.lm_tokens == sum(len(twin.encode(d, add_special_tokens=False).ids) + 1 for d in docs)
    assert twin_row.lm_tokens != rows[0].lm_tokens   # the twin is another tokenizer, not a copy of a point

    cached = sorted(cache.glob("knob-*-1500.json"))
    assert len(cached) == 3 and all(p.with_name(p.name + ".stamp.json").is_file() for p in cached)
    mtimes = [p.stat().st_mtime_ns for p in cached]
    assert main(args) == 0   # the second run takes every tokenizer from the cache, and counts the same
    assert [p.stat().st_mtime_ns for p in cached] == mtimes
    again = Sweep.from_dict(json.loads(out.read_text(encoding="utf-8"))).rows
    assert ([(r.point, r.lm_tokens, r.score.chars_per_token, r.score.morpheme_cut_share) for r in again]
            == [(r.point, r.lm_tokens, r.score.chars_per_token, r.score.morpheme_cut_share) for r in rows])


@pytest.mark.parametrize("flags, message", [
    (["--points", "0.1-0.4"], "is not JOIN+PHRASE"),
    (["--points", "0.6+0.5"], "join_share + phrase_share below 1"),
    (["--points", "0.1+0.4", "0.10+0.40"], "given twice"),
    (["--max-chars", "-1"], "--max-chars cannot be negative"),
    (["--vocab-size", "100"], "vocab_size must be at least"),
])
def test_bad_sweep_settings_are_clear_errors_before_any_training(tmp_path, capsys, flags, message):
    assert main(["tokenizer", "sweep", *flags, "--cache-dir", str(tmp_path)]) == 1
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_knob_points_parse_with_or_without_spaces():
    assert parse_knob_point("0.10+0.40") == parse_knob_point(" .1 + .4 ") == KnobPoint("morphemes", 0.1, 0.4)


def test_the_phrases_ablation_table_is_the_committed_sweep_and_matches_the_lm_ablation():
    """docs/ablations/tokenizer_phrases.md shows `tokenizer sweep`'s output, and its chosen point and twin count
    the same LM-text tokens as the LM ablation's `model bpc` rows (same text, same definition)."""
    record = json.loads((ROOT / "docs" / "ablations" / "tokenizer_sweep.json").read_text(encoding="utf-8"))
    result = Sweep.from_dict(record)
    assert result.chosen == KnobPoint("morphemes", 0.1, 0.4) and result.twin is not None
    assert format_sweep(result) in (ROOT / "docs" / "ablations" / "tokenizer_phrases.md").read_text(encoding="utf-8")
    bpc = json.loads((ROOT / "docs" / "ablations" / "lm_tokenizer_bpc.json").read_text(encoding="utf-8"))
    ours, bpe = bpc["rows"]
    chosen = next(r for r in result.rows if r.point == result.chosen)
    assert (chosen.lm_tokens, chosen.lm_chars) == (ours["tokens"], ours["chars"])
    assert (result.twin.lm_tokens, result.twin.lm_chars) == (bpe["tokens"], bpe["chars"])
