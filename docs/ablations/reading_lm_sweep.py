"""The reading LM's size against what it buys: n-gram order, pruning and beam width, on validation OCR rows
(reading_pretraining.md, last section). The head reads the rows once; each LM decodes those readings over a
small (alpha, beta) grid and the best pooled CER is printed with the LM's size.

    python docs/ablations/reading_lm_sweep.py runs/r3/final --orders 5 6 7 --min-counts 2 3
"""

from __future__ import annotations

import argparse
import time

from ko_hypervl.inference import KoHyperVL
from ko_hypervl.processing.reading_lm import DecodeSettings, fit_reading_lm
from ko_hypervl.training.reading_lm import ReadingLMSettings, corpus_lines, decoded_cer, validation_readings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a checkpoint with a valid reading head")
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--orders", type=int, nargs="+", default=[5, 6, 7])
    parser.add_argument("--min-counts", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--beams", type=int, nargs="+", default=[16])
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.5, 0.7])
    parser.add_argument("--betas", type=float, nargs="+", default=[1.5, 2.0, 2.5, 3.0])
    args = parser.parse_args()
    vlm = KoHyperVL.load(args.model)
    spec = vlm.model.reading_head_spec()
    references, lines, origin = validation_readings(vlm, spec, ReadingLMSettings(model=args.model, rows=args.rows))
    text = corpus_lines("train")
    print(f"{len(references)} transcriptions of the {origin}; best path: "
          f"{decoded_cer(references, lines, spec.units, greedy=True):.4f}")
    print("| order | min count | n-grams | MB (float32) | beam | best alpha, beta | CER | ms a row |")
    print("|---:|---:|---:|---:|---:|---|---:|---:|")
    for order in args.orders:
        for min_count in args.min_counts:
            lm = fit_reading_lm(text, spec.units, order, min_count)
            size = sum(g.nbytes + p.nbytes + b.nbytes for g, p, b in zip(lm.grams, lm.log_probs, lm.backoffs))
            for beam in args.beams:
                best, started = None, time.perf_counter()
                for alpha in args.alphas:
                    for beta in args.betas:
                        score = decoded_cer(references, lines, spec.units, lm, DecodeSettings(alpha, beta, beam))
                        best = min(best or (score, alpha, beta), (score, alpha, beta))
                per_row = 1000 * (time.perf_counter() - started) / (len(args.alphas) * len(args.betas) * len(lines))
                print(f"| {order} | {min_count} | {lm.size:,} | {size / 1e6:.1f} | {beam} | {best[1]:g}, {best[2]:g} "
                      f"| {best[0]:.4f} | {per_row:.0f} |", flush=True)


if __name__ == "__main__":
    main()
