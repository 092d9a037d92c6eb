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
               "--plot", str(plot), "--json-out", str(tmp_path / "scores.json")])
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


def test_missing_text_file_is_a_clear_error(tmp_path, capsys):
    assert main(["tokenizer", "eval", "--text", str(tmp_path / "none.txt"), "--no-baselines"]) == 1
    assert "text file not found" in capsys.readouterr().err


def test_encode_command(capsys):
    assert main(["tokenizer", "encode", "학교에 갔었다고 했잖아요.", "--ids"]) == 0
    out = capsys.readouterr().out
    assert "round trip exact: True" in out and "|" in out
    assert main(["tokenizer", "encode", ""]) == 0  # empty text: no tokens, no division by zero
    assert "0 tokens" in capsys.readouterr().out
