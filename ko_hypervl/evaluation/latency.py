"""Latency as a user sees it: single ``KoHyperVL.ask`` calls (batch of one, streamed), timed per mode."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ..inference import KoHyperVL
from .data import EvalQuestion


@dataclass(frozen=True)
class LatencySummary:
    samples: int
    mean_time_to_first_token_s: float
    median_time_to_first_token_s: float
    mean_tokens_per_s: float
    mean_total_s: float
    mean_new_tokens: float

    def to_dict(self) -> dict:
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in asdict(self).items()}


def spread_sample(count: int, total: int) -> list[int]:
    """``count`` indices spread evenly over ``range(total)``, so every kind of question gets timed."""
    count = min(count, total)
    return [i * total // count for i in range(count)]


def measure_latency(vlm: KoHyperVL, images: Sequence, questions: list[EvalQuestion], mode: str, samples: int,
                    max_new_tokens: int, progress: bool = True) -> LatencySummary | None:
    """Mean time to first token, tokens/s and total time of ``samples`` single ``ask`` calls; None if 0."""
    from tqdm.auto import tqdm

    picked = [questions[i] for i in spread_sample(samples, len(questions))]
    if not picked:
        return None
    # one untimed call first: the first generate of a process pays one-time set-up that no user request sees again
    vlm.ask(images[picked[0].image_index], picked[0].question, mode=mode, max_new_tokens=max_new_tokens)
    answers = [vlm.ask(images[q.image_index], q.question, mode=mode, max_new_tokens=max_new_tokens)
               for q in tqdm(picked, desc=f"latency {mode}", unit="call", disable=not progress)]
    first = [a.time_to_first_token_s for a in answers]
    return LatencySummary(
        samples=len(answers), mean_time_to_first_token_s=statistics.fmean(first),
        median_time_to_first_token_s=statistics.median(first),
        mean_tokens_per_s=statistics.fmean(a.tokens_per_s for a in answers),
        mean_total_s=statistics.fmean(a.total_s for a in answers),
        mean_new_tokens=statistics.fmean(a.new_tokens for a in answers),
    )
