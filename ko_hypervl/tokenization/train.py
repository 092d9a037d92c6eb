"""Train the morpheme-aware byte-level BPE tokenizer.

Why this design. A tokenizer that calls Kiwi at encode time is 50-100× slower than a subword encoder
and cannot be saved as a plain ``tokenizer.json``. So morphology is used only at *training* time to
decide what the vocabulary may contain, and the result is an ordinary byte-level BPE that any
``tokenizers`` runtime can run:

1. **Morpheme pieces.** Training text is cut at Kiwi's safe morpheme boundaries (a private-use
   delimiter that the training pre-tokenizer removes), and BPE is trained on those pieces: no learned
   token crosses a morpheme boundary, so when a word must be split it splits between morphemes.
2. **Whole-morpheme joins.** A second BPE round runs over sequences of *complete* morpheme tokens
   (each mapped to one private-use character) and learns the frequent joins (학교+에 → 학교에,
   했+잖아요 → 했잖아요). These tokens only ever contain whole morphemes, so they lengthen tokens
   without adding a single boundary inside a morpheme.

The final model is byte-level (every string round-trips exactly, unseen characters fall back to
bytes) with the merges of round 1 followed by those of round 2. ``join_share`` sets how much of the
vocabulary goes to round 2: more means fewer tokens per text; fewer leaves room for rarer morphemes.
``joins="space"`` restricts round 2 to a leading space with one whole morpheme, which removes no
boundary on a morpheme cut but stops short of 2 chars/token (``tokenizer eval`` shows both).
3. **Phrase joins** (``phrase_share`` > 0). A third BPE round joins whole-morpheme tokens *across a
   single space* and onto punctuation (수+ 있다 → 수 있다, 밝혔+다. → 밝혔다., 에 +대해 → 에 대해):
   Korean writes particles, endings and auxiliaries as their own words, and the same few word pairs
   recur in every sentence. These joins remove only boundaries at a space or before punctuation, never
   one inside a morpheme, and they are what lets a morpheme-aware 32k vocabulary spend fewer tokens
   than plain BPE of the same size (which can only join inside a word). A phrase token may start with
   a space but never ends with one. The encode-time pre-tokenizer then cuts text only at line breaks
   and runs of two or more spaces (:data:`PHRASE_SPLIT`), so phrases can form.

``method="plain"`` trains the ablation twin: ordinary byte-level BPE on the same lines, with the same
vocabulary size, special tokens, decoder and post-processor, but no Kiwi, no morpheme or space cuts, no
round 2 or 3 and GPT-2's word pre-tokenizer (what plain BPE is), so an LM trained on each isolates what
the morpheme-aware vocabulary is worth.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..settings import setting, settings_dict
from .bytelevel import to_byte_level
from .morphology import morpheme_cuts, split_at
from .specials import SPECIAL_TOKENS

log = logging.getLogger(__name__)

PIECE_DELIMITER = "\ue000"  # marks a morpheme cut in training text; removed by the training pre-tokenizer
_PUA_BASE = 0xF0000  # supplementary private-use plane: one character per token id in rounds 2 and 3
METHODS = ("morpheme", "plain")
JOIN_KINDS = ("morphemes", "space")
# Encode-time pre-tokens of a phrase tokenizer: runs of non-space text joined by single spaces (each
# with at most one leading space), then whitespace the way GPT-2's pattern treats it. A line break or a
# double space ends a phrase; rounds 1 and 2 still never cross a GPT-2 word, because no merge of theirs
# pairs letters with punctuation or digits or ends in a space.
PHRASE_SPLIT = r"(?: ?[^\s]+)+|\s+(?!\S)|\s+"


@dataclass
class TokenizerTrainSettings:
    out: Path = setting(help="directory to write the tokenizer to")
    vocab_size: int = setting(32000, help="total vocabulary size, special tokens and the 256 bytes included")
    join_share: float = setting(0.1, help="share of the learned vocabulary spent on joins of whole morphemes inside "
                                         "a word (학교+에); `tokenizer eval` shows the trade-off")
    joins: str = setting("morphemes", help="what round 2 may join: morphemes: any run of whole morphemes "
                                           "(학교+에, 했+잖아요) and a leading space; space: only a leading space "
                                           "with one whole morpheme (' 학교'), which adds no boundary inside a word",
                         choices=JOIN_KINDS)
    phrase_share: float = setting(0.4, help="share of the learned vocabulary spent on phrase joins: whole-morpheme "
                                             "tokens joined across one space or onto punctuation (수 있다, 밝혔다.); "
                                             "lets tokens span words, which plain BPE of the same size cannot "
                                             "(0.1 + 0.4: fewer tokens than that twin; 0: no token spans a space)")
    min_frequency: int = setting(2, help="a merge must occur at least this often")
    max_lines: int = setting(0, help="train on at most this many corpus lines (0: the whole train split)")
    kiwi_workers: int = setting(-1, help="Kiwi threads for the morpheme analysis (-1: all cores)")
    corpus_dir: Path | None = setting(None, help="corpora/ folder (default: the repository's)")
    cache_dir: Path | None = setting(Path.home() / ".cache" / "ko_hypervl",
                                     help="where the morpheme analysis of the training text is cached")
    method: str = setting("morpheme", help="morpheme: ours (Kiwi cuts at training time + whole-morpheme joins); "
                                           "plain: ordinary byte-level BPE on the same lines, same vocab size and "
                                           "special tokens, no morpheme cuts — the ablation twin (ignores "
                                           "--join-share and the Kiwi settings)", choices=METHODS)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown tokenizer method {self.method!r}; choose from {', '.join(METHODS)}")
        if self.vocab_size < len(SPECIAL_TOKENS) + 256 + 100:
            raise ValueError(f"vocab_size must be at least {len(SPECIAL_TOKENS) + 356} (specials + 256 bytes + 100)")
        if self.joins not in JOIN_KINDS:
            raise ValueError(f"unknown join kind {self.joins!r}; choose from {', '.join(JOIN_KINDS)}")
        if not 0.0 <= self.join_share < 1.0:
            raise ValueError("join_share must be in [0, 1)")
        if not 0.0 <= self.phrase_share < 1.0 or self.join_share + self.phrase_share >= 1.0:
            raise ValueError("phrase_share must be in [0, 1) and join_share + phrase_share below 1 "
                             "(round 1 needs some vocabulary for the morphemes themselves)")


def _byte_level():
    from tokenizers import pre_tokenizers

    return pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)


def _phrase_pre_tokenizer():
    """Encode time for a tokenizer with phrase joins: pre-tokens may hold several words (PHRASE_SPLIT)."""
    from tokenizers import Regex, pre_tokenizers

    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PHRASE_SPLIT), "isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])


def spans_words(backend) -> bool:
    """Whether a ``tokenizers.Tokenizer`` has phrase joins: its pre-tokenizer splits with PHRASE_SPLIT."""
    if backend.pre_tokenizer is None:
        return False
    state = json.loads(backend.pre_tokenizer.__getstate__())
    parts = state.get("pretokenizers", [state])
    return any(p.get("type") == "Split" and p.get("pattern", {}).get("Regex") == PHRASE_SPLIT for p in parts)


def training_lines(corpus_dir: Path | None = None, max_lines: int = 0) -> list[str]:
    """Lines of the corpus train split (never validation, test or the held-out sets)."""
    from ..textcorpus import load_text_corpus

    corpus = load_text_corpus(corpus_dir)["train"]
    lines = [line.replace(PIECE_DELIMITER, "") for text in corpus["text"] for line in text.split("\n")]
    return lines[:max_lines] if max_lines else lines


def with_space_cuts(line: str, cuts: Sequence[int]) -> list[int]:
    """Morpheme cuts plus a cut after every run of whitespace.

    Byte-level words carry their leading space (" 휴게소"). Learning morphemes with and without that
    space would spend two vocabulary entries on each; cutting the space off in round 1 learns each
    morpheme once, and round 2 joins the space to the morphemes that are frequent word starts.
    """
    spaces = {p for p in range(1, len(line)) if line[p - 1].isspace() and not line[p].isspace()}
    return sorted(spaces.union(cuts))


def delimit(line: str, cuts: Sequence[int]) -> str:
    return PIECE_DELIMITER.join(split_at(line, with_space_cuts(line, cuts)))


def train_morpheme_pieces(delimited: Sequence[str], vocab_size: int, min_frequency: int):
    """Round 1: byte-level BPE whose merges never cross a morpheme cut."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(PIECE_DELIMITER, "removed"), _byte_level()])
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=True,
    )
    tok.train_from_iterator(delimited, trainer, length=len(delimited))
    return tok


def morpheme_token_words(tok, lines: Sequence[str], cuts: Sequence[Sequence[int]]) -> Counter:
    """Count, per encode-time word, the sequence of its morpheme pieces as round-1 token ids.

    A piece that round 1 cannot express as ONE token becomes ``None``: joins must not reach into it,
    or the joined token would contain part of a morpheme.
    """
    pre = _byte_level()
    piece_id: dict[str, int | None] = {}
    words: Counter = Counter()
    for line, line_cuts in zip(tqdm(lines, desc="morpheme words", unit="line", mininterval=2), cuts):
        line_cuts = with_space_cuts(line, line_cuts)
        for _, (start, end) in pre.pre_tokenize_str(line):
            inner = [c - start for c in line_cuts if start < c < end]
            if not inner:
                continue  # a word that is one morpheme piece has nothing to join
            ids = []
            for piece in split_at(line[start:end], inner):
                bl = to_byte_level(piece)
                if bl not in piece_id:
                    toks = tok.model.tokenize(bl)
                    piece_id[bl] = toks[0].id if len(toks) == 1 else None
                ids.append(piece_id[bl])
            words[tuple(ids)] += 1
    return words


def _segments(ids: tuple) -> Iterator[str]:
    """Runs of 2+ whole-morpheme tokens, as private-use strings for the round-2 trainer."""
    run: list[int] = []
    for i in (*ids, None):
        if i is None:
            if len(run) >= 2:
                yield "".join(chr(_PUA_BASE + x) for x in run)
            run = []
        else:
            run.append(i)


def space_segments(words: Counter, space_id: int) -> Counter:
    """Only a single leading space followed by one whole morpheme: (' ', 학교) but never 학교+에."""
    pairs: Counter = Counter()
    for ids, n in words.items():
        if len(ids) >= 2 and ids[0] == space_id and ids[1] is not None:
            pairs[chr(_PUA_BASE + space_id) + chr(_PUA_BASE + ids[1])] += n
    return pairs


def train_morpheme_joins(words: Counter, num_joins: int, min_frequency: int,
                         space_id: int | None = None) -> list[tuple[str, str]]:
    """Round 2: BPE over sequences of whole-morpheme tokens; merges as pairs of private-use strings.

    With ``space_id`` only space+morpheme pairs are learned (``joins="space"``).
    """
    from tokenizers import Tokenizer, models, trainers

    if space_id is not None:
        segments = space_segments(words, space_id)
    else:
        segments = Counter()
        for ids, n in words.items():
            for seg in _segments(ids):
                segments[seg] += n
    return _train_private_use_bpe(segments, num_joins, min_frequency)


def _train_private_use_bpe(segments: Counter, num_joins: int, min_frequency: int) -> list[tuple[str, str]]:
    """BPE merges over counted strings of private-use characters (one character per token id)."""
    from tokenizers import Tokenizer, models, trainers

    if not segments or num_joins <= 0:
        return []
    alphabet = sorted({ch for seg in segments for ch in seg})
    tok = Tokenizer(models.BPE())
    trainer = trainers.BpeTrainer(vocab_size=len(alphabet) + num_joins, min_frequency=min_frequency,
                                  initial_alphabet=alphabet, limit_alphabet=len(alphabet), show_progress=True)

    def repeated() -> Iterator[str]:
        for seg, n in segments.items():
            for _ in range(n):
                yield seg

    tok.train_from_iterator(repeated(), trainer, length=sum(segments.values()))
    return [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in json.loads(tok.to_str())["model"]["merges"]]


def phrase_runs(tok, lines: Sequence[str], cuts: Sequence[Sequence[int]]) -> Counter:
    """Round 3's training units: runs of whole-morpheme tokens inside each phrase pre-token.

    ``tok`` is the round-1+2 tokenizer; each line is encoded with it and a token counts as whole when
    both of its edges lie on a morpheme cut, a space edge or a line end (so a morpheme that round 1
    split stays out of every join, as in round 2). A token of only whitespace may start a run but not
    continue one, so no phrase token ends in a space.
    """
    from tokenizers import Regex, pre_tokenizers

    phrases = pre_tokenizers.Split(Regex(PHRASE_SPLIT), "isolated")
    runs: Counter = Counter()
    run: list[int] = []

    def flush() -> None:
        if len(run) >= 2:
            runs["".join(chr(_PUA_BASE + i) for i in run)] += 1
        run.clear()

    batch = 4096
    for i in tqdm(range(0, len(lines), batch), desc="phrase runs", unit="batch", mininterval=2):
        encodings = tok.encode_batch(list(lines[i : i + batch]), add_special_tokens=False)
        for line, line_cuts, enc in zip(lines[i : i + batch], cuts[i : i + batch], encodings):
            edges = {0, len(line), *with_space_cuts(line, line_cuts)}
            edges.update(p for p in range(1, len(line)) if line[p].isspace() and not line[p - 1].isspace())
            ends = iter(end for _, (_, end) in phrases.pre_tokenize_str(line))
            phrase_end = next(ends, len(line))
            for token_id, (start, end) in zip(enc.ids, enc.offsets):
                while start >= phrase_end:
                    flush()
                    phrase_end = next(ends, len(line) + 1)
                if start not in edges or end not in edges:
                    flush()
                    continue
                if line[start:end].isspace():
                    flush()
                run.append(token_id)
            flush()
    return runs


def assemble(piece_tok, joins: Sequence[tuple[str, str]], vocab_size: int, phrases: bool = False):
    """One byte-level BPE: ``piece_tok``'s vocabulary and merges, then the joins, up to ``vocab_size`` tokens.

    ``joins`` are pairs of private-use strings over ``piece_tok``'s ids. ``phrases`` gives it the phrase
    pre-tokenizer (pre-tokens that span words) instead of GPT-2's word pattern.
    """
    from tokenizers import Tokenizer, decoders, processors

    spec = json.loads(piece_tok.to_str())
    vocab: dict[str, int] = spec["model"]["vocab"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in spec["model"]["merges"]]
    id_to_token = {i: t for t, i in vocab.items()}

    def real(pua: str) -> str:
        return "".join(id_to_token[ord(ch) - _PUA_BASE] for ch in pua)

    known = set(merges)
    total = len(vocab) + len(spec["added_tokens"]) - sum(1 for a in spec["added_tokens"] if a["content"] in vocab)
    for a, b in joins:
        if total >= vocab_size:
            break
        pair = (real(a), real(b))
        if pair in known:
            continue
        known.add(pair)
        merges.append(pair)
        if pair[0] + pair[1] not in vocab:
            vocab[pair[0] + pair[1]] = len(vocab)
            total += 1
    spec["model"]["merges"] = [list(m) for m in merges]
    tok = Tokenizer.from_str(json.dumps(spec, ensure_ascii=False))
    # encode time: plain byte-level words (or phrases), no Kiwi, no delimiter
    tok.pre_tokenizer = _phrase_pre_tokenizer() if phrases else _byte_level()
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def train_tokenizer(settings: TokenizerTrainSettings, lines: Sequence[str] | None = None):
    """Train on ``lines`` (default: the corpus train split) and return the ``tokenizers.Tokenizer``."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    t0 = time.time()
    if lines is None:
        lines = training_lines(settings.corpus_dir, settings.max_lines)
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError("no training text: the corpus (or the given lines) is empty")
    if settings.method == "plain":
        return train_plain_tokenizer(lines, settings.vocab_size, settings.min_frequency, t0)
    log.info("morpheme analysis of %d lines (%d characters)", len(lines), sum(map(len, lines)))
    cuts = cached_morpheme_cuts(lines, settings.kiwi_workers, settings.cache_dir)
    learned = settings.vocab_size - len(SPECIAL_TOKENS) - 256
    word_vocab = settings.vocab_size - int(learned * settings.phrase_share)  # rounds 1 and 2
    piece_vocab = word_vocab - int(learned * settings.join_share)
    piece_tok = train_morpheme_pieces([delimit(l, c) for l, c in zip(lines, cuts)], piece_vocab, settings.min_frequency)
    words = morpheme_token_words(piece_tok, lines, cuts)
    want = word_vocab - piece_tok.get_vocab_size()
    # ask for extra joins: some coincide with earlier merges and are skipped in assemble()
    space_id = piece_tok.token_to_id(to_byte_level(" ")) if settings.joins == "space" else None
    joins = train_morpheme_joins(words, int(want * 1.1) + 10, settings.min_frequency, space_id)
    tok = assemble(piece_tok, joins, word_vocab)
    if settings.phrase_share > 0:
        runs = phrase_runs(tok, lines, cuts)
        want = settings.vocab_size - tok.get_vocab_size()
        # round 3: BPE over those runs, merges as private-use pairs over the round-1+2 ids
        joins = _train_private_use_bpe(runs, int(want * 1.1) + 10, settings.min_frequency)
        tok = assemble(tok, joins, settings.vocab_size, phrases=True)
    log.info("trained %d-token vocabulary in %.0f s", tok.get_vocab_size(), time.time() - t0)
    return tok


def train_plain_tokenizer(lines: Sequence[str], vocab_size: int, min_frequency: int, t0: float | None = None):
    """The ablation twin: round 1 alone on the raw lines (no delimiter in them, so no cut), assembled like ours.

    ``assemble`` gives it GPT-2's word pre-tokenizer and the same decoder and post-processor as ours;
    the trainer reserves the same special tokens at the same ids.
    """
    t0 = time.time() if t0 is None else t0
    log.info("plain byte-level BPE on %d lines (%d characters), no morpheme analysis", len(lines), sum(map(len, lines)))
    piece_tok = train_morpheme_pieces([line.replace(PIECE_DELIMITER, "") for line in lines], vocab_size, min_frequency)
    tok = assemble(piece_tok, [], vocab_size)
    log.info("trained %d-token plain BPE vocabulary in %.0f s", tok.get_vocab_size(), time.time() - t0)
    return tok


def cached_morpheme_cuts(lines: Sequence[str], workers: int, cache_dir: Path | None) -> list[list[int]]:
    """Kiwi is the slow step (~0.1 M chars/s/core): reuse its cuts for the same lines and Kiwi version."""
    import gzip
    import hashlib

    import kiwipiepy

    if cache_dir is None:
        return _analyse(lines, workers)
    digest = hashlib.sha1("\n".join(lines).encode("utf-8", "surrogatepass"))
    digest.update(kiwipiepy.__version__.encode())
    path = Path(cache_dir) / f"kiwi-cuts-{digest.hexdigest()[:16]}.json.gz"
    if path.is_file():
        try:
            cuts = json.loads(gzip.decompress(path.read_bytes()))
            if len(cuts) == len(lines):
                return cuts
        except (OSError, ValueError):
            log.warning("ignoring unreadable cache %s", path)
    cuts = _analyse(lines, workers)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(gzip.compress(json.dumps(cuts).encode()))
    tmp.replace(path)
    return cuts


def _analyse(lines: Sequence[str], workers: int, chunk: int = 20000) -> list[list[int]]:
    cuts: list[list[int]] = []
    with tqdm(total=sum(map(len, lines)), desc="kiwi", unit="char", unit_scale=True, mininterval=2) as bar:
        for i in range(0, len(lines), chunk):
            batch = lines[i : i + chunk]
            cuts.extend(morpheme_cuts(batch, num_workers=workers))
            bar.update(sum(map(len, batch)))
    return cuts


def save_training_settings(settings: TokenizerTrainSettings, out: Path, extra: dict) -> None:
    record = settings_dict(settings)
    (out / "training_args.json").write_text(json.dumps({**record, **extra}, ensure_ascii=False, indent=2) + "\n")

