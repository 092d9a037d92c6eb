"""`ko-hypervl tokenizer eval`: one table, ours beside the baselines, and a bar chart."""

from ko_hypervl.cli import main
from ko_hypervl.tokenization.baselines import HFTokenizerAdapter
from ko_hypervl.tokenization.evaluate import EvalText, format_table, score
from ko_hypervl.tokenization.hf import load_tokenizer

LINES = [
    "학교에 갔었다고 했잖아요.",
    "오늘 서울의 최고 기온은 27도로 어제보다 3도 높겠습니다.",
    "이 영화 진짜 재밌어요 ㅋㅋㅋ 강추!",
    "정부는 내년 예산안을 국회에 제출했다.",
]


def test_eval_command_prints_one_table_and_writes_a_chart(tmp_path, capsys):
    text = tmp_path / "news.txt"
    text.write_text("\n".join(LINES * 5), encoding="utf-8")
    plot = tmp_path / "chart.png"
    rc = main(["tokenizer", "eval", "--text", str(text), "--no-train-baselines", "--speed-seconds", "0.05",
               "--plot", str(plot), "--json-out", str(tmp_path / "scores.json"), "--no-tradeoff"])
    assert rc == 0
    out = capsys.readouterr().out
    header = [l for l in out.splitlines() if l.startswith("| tokenizer")]
    assert len(header) == 1
    assert "| ours: ko-hypervl-32k |" in out
    assert plot.stat().st_size > 5000 and plot.read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "scores.json").exists()


def test_score_of_our_tokenizer_is_exact_and_morpheme_aware():
    from ko_hypervl.tokenization.morphology import morpheme_cuts

    tok = load_tokenizer()
    adapter = HFTokenizerAdapter("ours", tok.backend_tokenizer)
    text = EvalText(LINES, morpheme_cuts(LINES), [None] * len(LINES))
    s = score(adapter, text, speed_seconds=0.05)
    assert s.round_trip == 1.0
    assert s.morpheme_cut_share > 0.7
    assert s.chars_per_token > 1.8
    assert "| ours |" in format_table([s])


def test_eval_prints_the_tradeoff_curve_with_its_ceiling(tmp_path, capsys):
    """The trade-off section: one row per knob value, both ceilings, the choice in words, a PNG, JSON; cached."""
    import json

    text = tmp_path / "news.txt"
    text.write_text("\n".join(LINES * 5), encoding="utf-8")
    cache, plot = tmp_path / "cache", tmp_path / "tradeoff.png"
    args = ["tokenizer", "eval", "--text", str(text), "--no-baselines", "--speed-seconds", "0.05",
            "--plot", str(tmp_path / "bars.png"), "--tradeoff-plot", str(plot), "--json-out", str(tmp_path / "s.json"),
            "--vocab-size", "1500", "--tradeoff-train-lines", "3000", "--join-shares", "0.0", "0.4",
            "--space-join-shares", "0.4", "--phrase-shares", "0.3", "--cache-dir", str(cache)]
    assert main(args) == 0
    out = capsys.readouterr().out
    section = out[out.index("Trade-off along our join knob"):]
    for row in ("| morpheme joins 0.00 |", "| morpheme joins 0.40 |", "| space joins 0.40 |",
                "| morpheme joins 0.10 + phrases 0.30 |",
                "| ceiling: 1,152 most frequent whole morphemes", "| ceiling: every morpheme of the training text"):
        assert row in section
    assert "- highest share on the curve:" in section and "(chosen)" not in section  # bundled is 32k, not 1,500
    assert plot.read_bytes()[:4] == b"\x89PNG"
    record = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))["tradeoff"]
    assert [(p["joins"], p["join_share"], p["phrase_share"]) for p in record["points"]] == [
        ("morphemes", 0.0, 0.0), ("morphemes", 0.4, 0.0), ("space", 0.4, 0.0), ("morphemes", 0.1, 0.3)]
    shares = {(p["joins"], p["join_share"], p["phrase_share"]): p["morpheme_cut_share"] for p in record["points"]}
    ceiling = max(c["share"] for c in record["ceilings"])
    assert all(share <= ceiling for share in shares.values())
    cached = sorted(cache.glob("knob-*-1500.json"))
    assert len(cached) == 4 and all(p.with_name(p.name + ".stamp.json").is_file() for p in cached)
    mtimes = [p.stat().st_mtime_ns for p in cached]
    assert main(args) == 0  # second run: the knob tokenizers come from the cache
    assert [p.stat().st_mtime_ns for p in cached] == mtimes


def test_readme_tradeoff_table_is_the_committed_eval_output():
    """The README's trade-off table and curve come from docs/tokenizer_eval.json (tokenizer/reproduce.sh)."""
    import json
    from pathlib import Path

    from ko_hypervl.tokenization.tradeoff import Tradeoff, format_tradeoff

    root = Path(__file__).resolve().parents[1]
    record = json.loads((root / "docs" / "tokenizer_eval.json").read_text(encoding="utf-8"))
    result = Tradeoff.from_dict(record["tradeoff"])
    assert result.chosen is not None and len(result.points) >= 6 and len(result.ceilings) == 2
    assert format_tradeoff(result) in (root / "README.md").read_text(encoding="utf-8")
    assert Tradeoff.from_dict(result.to_dict()) == result


def test_bundled_tokenizer_knob_is_the_chosen_point():
    from ko_hypervl.tokenization.bundled import bundled_tokenizer_dir
    from ko_hypervl.tokenization.tradeoff import KnobPoint

    assert KnobPoint.of_tokenizer(bundled_tokenizer_dir(), 32000) == KnobPoint("morphemes", 0.1, 0.4)
    assert KnobPoint.of_tokenizer(bundled_tokenizer_dir(), 1500) is None


def test_missing_text_file_is_a_clear_error(tmp_path, capsys):
    assert main(["tokenizer", "eval", "--text", str(tmp_path / "none.txt"), "--no-baselines"]) == 1
    assert "text file not found" in capsys.readouterr().err


def test_encode_command(capsys):
    assert main(["tokenizer", "encode", "학교에 갔었다고 했잖아요.", "--ids"]) == 0
    out = capsys.readouterr().out
    assert "round trip exact: True" in out and "|" in out
    assert main(["tokenizer", "encode", ""]) == 0  # empty text: no tokens, no division by zero
    assert "0 tokens" in capsys.readouterr().out
