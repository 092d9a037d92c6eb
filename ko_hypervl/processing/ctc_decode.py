"""Decoding the reading head's CTC output: best path, or prefix beam search with a letter n-gram LM.

The prefix beam search (Hannun et al., 2014) keeps, for each candidate reading, the probability of all the
alignments that end in a blank and of those that end in its last unit, so a letter written twice survives a
blank between its copies and a letter held over several positions is counted once. Each new unit is scored
by ``alpha`` · log P_lm(unit | the units before) plus ``beta``, which pays back the length the LM takes off;
the line's end is scored by the LM too. Readings are prefixes in a trie (integer nodes), so extending one
costs a dictionary lookup however long the line.
"""

from __future__ import annotations

import math

import numpy as np

from ..model.reading import BLANK, best_path, compose
from .reading_lm import BOUNDARY, DecodeSettings, ReadingLM

NEG_INF = -math.inf
PRUNE_LOG_PROB = math.log(1e-4)    # a unit less likely than this at a position is not tried there
MAX_CANDIDATES = 12                # nor more than this many units per position


def _logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def beam_search(log_probs: np.ndarray, lm: ReadingLM | None = None,
                settings: DecodeSettings | None = None) -> list[int]:
    """The most probable unit ids of one line under the head (positions × classes, natural log) and the LM."""
    settings = settings or (lm.decode if lm is not None else DecodeSettings(alpha=0.0, beta=0.0))
    alpha, beta, width = settings.alpha, settings.beta, settings.beam
    context = lm.order - 1 if lm is not None else 0
    # the trie: node → (parent, unit, LM history); node 0 is the empty reading
    parent, unit_of, history = [-1], [BOUNDARY], [(BOUNDARY,)]
    children: dict[tuple[int, int], int] = {}
    lm_score = [0.0]                                  # alpha · log P_lm + beta · units, per node
    beams = {0: (0.0, NEG_INF)}                       # node → (log P ending in blank, … ending in its unit)
    log_probs = np.asarray(log_probs, dtype=np.float64)
    for row in log_probs:
        blank = row[BLANK]
        order = np.argsort(row)[::-1][:MAX_CANDIDATES + 1]
        candidates = [int(c) for c in order if c != BLANK and row[c] > PRUNE_LOG_PROB]
        nxt: dict[int, list[float]] = {}
        for node, (pb, pnb) in beams.items():
            total = _logaddexp(pb, pnb)
            slot = nxt.setdefault(node, [NEG_INF, NEG_INF])
            slot[0] = _logaddexp(slot[0], total + blank)
            for c in candidates:
                p = float(row[c])
                if c == unit_of[node] and node != 0:
                    slot[1] = _logaddexp(slot[1], pnb + p)      # the same letter, still being written
                    arrive = pb + p                              # the letter again, after a blank
                else:
                    arrive = total + p
                child = children.get((node, c))
                if child is None:
                    child = len(parent)
                    children[(node, c)] = child
                    parent.append(node)
                    unit_of.append(c)
                    history.append((history[node] + (c,))[-context:] if context else ())
                    gain = beta + (alpha * lm.log_prob(history[node], c) if lm is not None and alpha else 0.0)
                    lm_score.append(lm_score[node] + gain)
                child_slot = nxt.setdefault(child, [NEG_INF, NEG_INF])
                child_slot[1] = _logaddexp(child_slot[1], arrive)
        ranked = sorted(nxt.items(), key=lambda item: _logaddexp(*item[1]) + lm_score[item[0]], reverse=True)
        beams = {node: (pb, pnb) for node, (pb, pnb) in ranked[:width]}

    def final(node: int) -> float:
        end = alpha * lm.log_prob(history[node], BOUNDARY) if lm is not None and alpha else 0.0
        return _logaddexp(*beams[node]) + lm_score[node] + end

    node = max(beams, key=final)
    ids = []
    while node > 0:
        ids.append(unit_of[node])
        node = parent[node]
    return ids[::-1]


def decoder_name(lm: ReadingLM | None) -> str:
    """How ``decode_reading`` decodes with ``lm`` and no settings of its own (what a reading records)."""
    return "beam search + reading LM" if lm is not None else "best path"


def decode_reading(log_probs, units: tuple[str, ...], lm: ReadingLM | None = None,
                   settings: DecodeSettings | None = None, greedy: bool = False) -> str:
    """One line's text: best path where ``greedy`` or there is no LM and no settings, else the beam search."""
    if lm is not None and tuple(lm.units) != tuple(units):
        raise ValueError("the reading LM was fitted for another head's units; fit it again with "
                         "`ko-hypervl model reading-lm`")
    array = log_probs.detach().float().cpu().numpy() if hasattr(log_probs, "detach") else np.asarray(log_probs)
    ids = best_path(array) if greedy or (lm is None and settings is None) else beam_search(array, lm, settings)
    return compose([units[c - 1] for c in ids])
