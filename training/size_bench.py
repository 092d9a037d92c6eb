"""Measure one training step of a candidate model size on a rendered corpus: how the bundled recipe's sizes were chosen.

    python training/size_bench.py DATA_DIR '{"tile_size": 112, "max_tiles": 20, ...}' [both|large|small] [frozen-vision]

DATA_DIR is a `ko-hypervl corpora build` folder; the JSON holds `ModelBuildSettings` fields. Prints parameters,
tokens per batch of 8 conversations and samples/s of a forward + backward + AdamW step (docs/model_sizes.md);
with ``frozen-vision`` the encoders do not train (a stage's --no-train-vision), as after a reading stage.
"""
import sys, time, json, torch
from pathlib import Path
from datasets import load_from_disk
from ko_hypervl.model.build import ModelBuildSettings, build_model
from ko_hypervl.training.stages import VisionLanguageStage, DCLSettings, SFTSettings
torch.set_num_threads(2)
cfg = json.loads(sys.argv[2]); branches = sys.argv[3] if len(sys.argv) > 3 else "both"
frozen = sys.argv[4:] == ["frozen-vision"]
model, proc = build_model(ModelBuildSettings(**cfg))
n = sum(p.numel() for p in model.parameters())
ds = load_from_disk(sys.argv[1])["train"]
S = (DCLSettings if branches == "both" else SFTSettings)(init=Path("."), data=Path("."), max_length=4096, train_vision=not frozen, **({} if branches=="both" else {"branches": branches}))
st = VisionLanguageStage("dcl", S, ds, proc, 0)
# the stage's own choice of what trains (its branches' encoders unless frozen, projectors, LM)
opt = torch.optim.AdamW([p for _, p in st.trainable_parameters(model)], 1e-4)
times = []; toks = []
for step in range(4):
    idx = [(step * 8 + i) % len(st.rows) for i in range(8)]
    t0 = time.perf_counter()
    b = st.make_batch(idx, step)
    t1 = time.perf_counter()
    loss, parts = st.loss(model, b, "cpu")
    loss.backward(); opt.step(); opt.zero_grad()
    times.append((t1 - t0, time.perf_counter() - t1)); toks.append(b["num_tokens"])
prep = sum(t[0] for t in times[1:]) / 3; comp = sum(t[1] for t in times[1:]) / 3
print(f"params {n/1e6:.2f}M  tokens/batch {sum(toks)/4:.0f}  prep {prep:.2f}s compute {comp:.2f}s per 8 samples -> {8/(prep+comp):.2f} samples/s", cfg, branches, "frozen-vision" * frozen)
