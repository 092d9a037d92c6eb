"""Benchmarks for the model issue's targets, each printed beside its baseline from the same run.

1. Peak memory of turning a 4000×3000 and a 1000×750 image into visual tokens: tiles in chunks
   (``vision_chunk_size``) against all tiles at once. Each measurement runs in a fresh process and reads
   the kernel's peak resident set (VmHWM), so earlier runs and allocator caches do not hide growth.
2. Visual tokens and prefill time per VRC scale: the tokens counted in ``input_ids`` against the formula
   (rows·cols + [rows·cols > 1]) · tokens_per_tile, and the prefill time per visual token.
3. ``auto`` versus full resolution on a mixed set of rendered charts, tables, exam pages and OCR lines:
   visual tokens with the checkpoint's VRC (an untrained VRC's choice is arbitrary: its savings count only
   for a trained checkpoint, see the training issues).
4. Greedy generation of 64 new tokens with and without the KV cache: the same tokens, and the speed-up.
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..settings import setting


@dataclass
class ModelBenchSettings:
    model: str | None = setting(None, help="checkpoint directory (default: a new model with the default build settings)")
    max_tiles: int = setting(64, help="tile cap for the memory and scaling benchmarks (64 = the whole 8×8 grid)")
    mixed_images: int = setting(24, help="rendered images in the auto-versus-full set")
    new_tokens: int = setting(64, help="tokens generated in the KV-cache benchmark")
    repeats: int = setting(3, help="timing repeats (the median is reported)")
    only: list[str] | None = setting(None, help="run only these: memory scaling vrc cache")
    json_out: str | None = setting(None, help="also write the results as JSON here")


def _load(model_dir: str | None, max_tiles: int):
    from ..checkpoint import load_checkpoint
    from .build import ModelBuildSettings, build_model

    if model_dir is None:
        model, processor = build_model(ModelBuildSettings(max_tiles=max_tiles))
    else:
        model, processor = load_checkpoint(model_dir)
        processor.image_processor.max_tiles = max_tiles
    return model.eval(), processor


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _memory_child(model_dir, max_tiles, width, height, chunk, result_queue):
    from PIL import Image

    torch.set_num_threads(1)
    model, processor = _load(model_dir, max_tiles)
    if chunk is not None:
        model.config.vision_chunk_size = chunk
    image = Image.radial_gradient("L").resize((width, height)).convert("RGB")
    with torch.inference_mode():  # warm-up on a small image so one-time allocations are not counted
        model.get_image_features(processor.image_processor(Image.new("RGB", (64, 64)))["pixel_values"])
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    with torch.inference_mode():
        vision = processor.image_processor(image)
        tokens = model.get_image_features(vision["pixel_values"])
    peak = _status_kib("VmHWM")
    result_queue.put({"width": width, "height": height, "crops": int(vision["pixel_values"].shape[0]),
                      "visual_tokens": int(tokens.shape[0]), "rss_before_mib": before / 1024,
                      "peak_mib": peak / 1024, "increase_mib": (peak - before) / 1024})


def measure_encode_memory(model_dir, max_tiles: int, width: int, height: int, chunk: int | None) -> dict:
    context = multiprocessing.get_context("spawn")
    result_queue = context.Queue()
    process = context.Process(target=_memory_child, args=(model_dir, max_tiles, width, height, chunk, result_queue))
    process.start()
    result = result_queue.get(timeout=600)
    process.join()
    return result


def bench_memory(settings: ModelBenchSettings) -> dict:
    rows = {}
    for label, chunk in (("chunked", None), ("all at once", 10_000)):
        small = measure_encode_memory(settings.model, settings.max_tiles, 1000, 750, chunk)
        large = measure_encode_memory(settings.model, settings.max_tiles, 4000, 3000, chunk)
        rows[label] = {"1000x750": small, "4000x3000": large,
                       "peak_ratio": large["peak_mib"] / small["peak_mib"],
                       "increase_ratio": large["increase_mib"] / max(small["increase_mib"], 1e-6)}
    print("\n## 1. Peak memory: image → visual tokens (fresh process each; VmHWM)")
    print("| tiles encoded | image | crops | peak MiB | increase MiB |")
    print("|---|---|---|---|---|")
    for label, row in rows.items():
        for size in ("1000x750", "4000x3000"):
            r = row[size]
            print(f"| {label} | {size} | {r['crops']} | {r['peak_mib']:.0f} | {r['increase_mib']:.1f} |")
    for label, row in rows.items():
        print(f"{label}: 4000×3000 / 1000×750 peak = {row['peak_ratio']:.2f}× (target ≤ 1.5×), "
              f"increase = {row['increase_ratio']:.2f}×")
    return rows


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _prompt(processor, n_images: int = 1) -> str:
    content = [{"type": "image"}] * n_images + [{"type": "text", "text": "이 표에서 가장 큰 값은 무엇입니까?"}]
    return processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                         tokenize=False)


def bench_scaling(settings: ModelBenchSettings, model, processor) -> list[dict]:
    from PIL import Image

    image = Image.radial_gradient("L").resize((1000, 750)).convert("RGB")
    prompt = _prompt(processor)
    rows = []
    for scale in model.config.vrc_scales:
        inputs = processor(images=[image], text=prompt, scales=[scale])
        plan = inputs.tile_plans[0]
        counted = int((inputs["input_ids"] == model.config.image_token_id).sum())
        formula = (plan.rows * plan.cols + int(plan.rows * plan.cols > 1)) * plan.tokens_per_tile
        with torch.inference_mode():
            seconds = _median_time(lambda: model(**inputs, use_cache=False, logits_to_keep=1), settings.repeats)
        rows.append({"scale": scale, "grid": f"{plan.rows}×{plan.cols}", "visual_tokens": counted,
                     "formula": formula, "prompt_tokens": int(inputs["input_ids"].shape[-1]), "prefill_s": seconds,
                     "ms_per_visual_token": 1000 * seconds / counted})
    print("\n## 2. Visual tokens and prefill time per scale (1000×750 image, large branch)")
    print("| scale | tiles | visual tokens | formula | prompt tokens | prefill ms | ms / visual token |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scale']:g} | {r['grid']} | {r['visual_tokens']} | {r['formula']} | {r['prompt_tokens']} | "
              f"{1000 * r['prefill_s']:.0f} | {r['ms_per_visual_token']:.2f} |")
    agree = all(r["visual_tokens"] == r["formula"] for r in rows)
    full, smallest = rows[-1], rows[0]
    print(f"tokens match the formula at every scale: {agree}; prefill {smallest['prefill_s'] / full['prefill_s']:.2f}× "
          f"of full at {smallest['visual_tokens'] / full['visual_tokens']:.2f}× the visual tokens")
    return rows


def mixed_images(count: int) -> list:
    """Rendered test-split charts, tables, exam pages and OCR lines: the sizes the model meets."""
    from ..imagecorpus.build import render_sample
    from ..processing import load_image

    kinds = ("charts", "tables", "exams", "ocr")
    return [load_image(render_sample(kinds[i % 4], i, 0, "test", 1)["image"]["bytes"]) for i in range(count)]


def bench_vrc(settings: ModelBenchSettings, model, processor) -> dict:
    from ..inference import KoHyperVL

    vlm = KoHyperVL(model, processor)
    images = mixed_images(settings.mixed_images)
    auto = vlm.decide(images, "auto")
    full = vlm.decide(images, "high")
    auto_tokens, full_tokens = sum(d.visual_tokens for d in auto), sum(d.visual_tokens for d in full)
    scales = [d.scale for d in auto]
    result = {"images": len(images), "auto_visual_tokens": auto_tokens, "full_visual_tokens": full_tokens,
              "saved": 1 - auto_tokens / full_tokens, "scale_counts": {s: scales.count(s) for s in sorted(set(scales))}}
    print(f"\n## 3. auto (VRC) versus full resolution on {len(images)} rendered images")
    print(f"full: {full_tokens} visual tokens; auto: {auto_tokens} ({100 * result['saved']:.1f}% fewer; target ≥ 50% "
          f"with a trained VRC); scales chosen: {result['scale_counts']}")
    return result


def bench_cache(settings: ModelBenchSettings, model, processor) -> dict:
    from PIL import Image

    image = Image.radial_gradient("L").resize((800, 600)).convert("RGB")
    inputs = processor(images=[image], text=_prompt(processor))
    # a fixed length: an untrained model may stop early, a trained one at its answer's end
    options = dict(max_new_tokens=settings.new_tokens, min_new_tokens=settings.new_tokens, do_sample=False)
    outputs, times = {}, {}
    for use_cache in (True, False):
        with torch.inference_mode():
            outputs[use_cache] = model.generate(**inputs, use_cache=use_cache, **options)
            times[use_cache] = _median_time(lambda: model.generate(**inputs, use_cache=use_cache, **options),
                                            max(1, settings.repeats - 1))
    same = bool(torch.equal(outputs[True], outputs[False]))
    result = {"prompt_tokens": int(inputs["input_ids"].shape[-1]), "new_tokens": settings.new_tokens,
              "with_cache_s": times[True], "without_cache_s": times[False],
              "speedup": times[False] / times[True], "identical_output": same}
    print(f"\n## 4. Greedy generation of {settings.new_tokens} tokens after a {result['prompt_tokens']}-token prompt")
    print(f"with KV cache {times[True]:.2f} s, without {times[False]:.2f} s: {result['speedup']:.1f}× faster "
          f"(target ≥ 3×); identical tokens: {same}")
    return result


def run_benchmarks(settings: ModelBenchSettings) -> dict:
    only = set(settings.only or ("memory", "scaling", "vrc", "cache"))
    unknown = only - {"memory", "scaling", "vrc", "cache"}
    if unknown:
        raise ValueError(f"unknown benchmark(s) {sorted(unknown)}; choose from memory scaling vrc cache")
    print(f"# ko-hypervl model benchmarks ({settings.model or 'new model, default build settings'}, "
          f"{torch.get_num_threads()} threads)")
    results: dict = {"settings": asdict(settings)}
    if "memory" in only:
        results["memory"] = bench_memory(settings)
    if only & {"scaling", "vrc", "cache"}:
        model, processor = _load(settings.model, settings.max_tiles)
        if "scaling" in only:
            results["scaling"] = bench_scaling(settings, model, processor)
        if "vrc" in only:
            results["vrc"] = bench_vrc(settings, model, processor)
        if "cache" in only:
            results["cache"] = bench_cache(settings, model, processor)
    if settings.json_out:
        Path(settings.json_out).write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n",
                                           encoding="utf-8")
    return results
