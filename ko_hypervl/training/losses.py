"""Training losses as (weighted) sums over target tokens; the loop divides by the step's global target weight,
so every token weighs the same whatever the micro-batch, accumulation or process split."""

from __future__ import annotations

import torch
from torch import nn


def next_token_targets(labels: torch.Tensor) -> torch.Tensor:
    """Mask (batch, length − 1) of positions whose next token is a target (label ≠ −100)."""
    return labels[:, 1:] != -100


def predicting_positions(labels: torch.Tensor) -> torch.Tensor:
    """Sequence positions whose logits some row needs: the model computes the output head only there."""
    return next_token_targets(labels).any(dim=0).nonzero().squeeze(1)


def gather_target_logits(logits: torch.Tensor, labels: torch.Tensor, positions: torch.Tensor):
    """``(logits, targets)`` of every target token, row by row, from logits kept at ``positions``."""
    mask = next_token_targets(labels)[:, positions]
    targets = labels[:, 1:][:, positions][mask]
    return logits[mask], targets


# how an answer's tokens are weighted: "token", every target token the same (LLaVA's mean over tokens), or
# "sqrt", each answer's tokens 1/√(its length) (InternVL 2.5's square averaging): under the token mean a 60-token
# table outweighs a 2-token answer 30 to 1, so the long answers (tables, transcriptions: half the answer tokens of
# the image corpus) set what the model learns and the short ones (a name, a unit, a number) barely count
ANSWER_WEIGHTINGS = ("token", "sqrt")


def answer_run_ids(labels: torch.Tensor) -> torch.Tensor:
    """(batch, length − 1): which answer of its row each next-token target is in, 1, 2, … (0: not a target).

    An answer is a run of targets: it starts where a target follows a non-target.
    """
    targets = next_token_targets(labels)
    starts = targets & ~nn.functional.pad(targets[:, :-1], (1, 0), value=False)
    return starts.long().cumsum(dim=1) * targets


def answer_token_weights(labels: torch.Tensor, weighting: str = "token") -> torch.Tensor:
    """Weights (batch, length − 1) of the next-token targets (0 elsewhere): each answer, a run of target
    tokens, gets ``1/√n`` per token under "sqrt" (n its token count), 1 under "token"."""
    if weighting not in ANSWER_WEIGHTINGS:
        raise ValueError(f"unknown answer weighting {weighting!r}; choose from {', '.join(ANSWER_WEIGHTINGS)}")
    targets = next_token_targets(labels)
    if weighting == "token":
        return targets.float()
    run_id = answer_run_ids(labels)
    lengths = torch.zeros(labels.shape[0], targets.shape[1] + 1, dtype=torch.float32, device=labels.device)
    lengths.scatter_add_(1, run_id, torch.ones_like(run_id, dtype=torch.float32))
    per_token = lengths.gather(1, run_id).clamp(min=1).rsqrt()
    return per_token * targets


def gather_target_weights(weights: torch.Tensor, labels: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The weights of the targets ``gather_target_logits`` returns, in the same order."""
    mask = next_token_targets(labels)[:, positions]
    return weights[:, positions][mask]


def cross_entropy_sum(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    if weights is None:
        return nn.functional.cross_entropy(logits.float(), targets, reduction="sum")
    return (nn.functional.cross_entropy(logits.float(), targets, reduction="none") * weights).sum()


def distillation_kl_sum(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
                        weights: torch.Tensor | None = None) -> torch.Tensor:
    """T² · KL(teacher_T ‖ student_T) summed over tokens, the teacher detached (Hinton et al.; DCL).

    Softening both distributions with the temperature passes on how the teacher ranks wrong answers;
    T² keeps the gradient scale comparable to the cross-entropy's as T changes.
    """
    if temperature <= 0:
        raise ValueError(f"the distillation temperature must be positive, got {temperature}")
    teacher = nn.functional.log_softmax(teacher_logits.detach().float() / temperature, dim=-1)
    student = nn.functional.log_softmax(student_logits.float() / temperature, dim=-1)
    if weights is None:
        kl = nn.functional.kl_div(student, teacher, reduction="sum", log_target=True)
    else:
        kl = (nn.functional.kl_div(student, teacher, reduction="none", log_target=True).sum(dim=-1) * weights).sum()
    return kl * temperature ** 2


def greedy_correct(logits: torch.Tensor, targets: torch.Tensor, suppressed: list[int] | None = None) -> torch.Tensor:
    """Per target token, whether greedy decoding picks it (the tokens generation suppresses never win).

    An answer is generated exactly by greedy decoding iff every one of its tokens, its end token
    included, is correct here under teacher forcing, so this scores exact match with one forward pass.
    """
    if suppressed:
        logits = logits.clone()
        logits[:, suppressed] = float("-inf")
    return logits.argmax(dim=-1) == targets


def tile_token_sequences(features: torch.Tensor, image_grid: torch.Tensor) -> list[torch.Tensor]:
    """Per image, its visual tokens (tokens, hidden) in the order the LM reads them, global thumbnail left out.

    ``features`` are a micro-batch's visual tokens, crop after crop as ``get_image_features`` returns them;
    ``image_grid`` (images, 2) the tile rows and columns of each image. Each image's crops are its tiles row by
    row, then its thumbnail when it has more than one tile.
    """
    tiles = image_grid.prod(dim=-1).tolist()
    crops = sum(t + (t > 1) for t in tiles)
    if crops == 0 or features.shape[0] % crops:
        raise ValueError(f"{features.shape[0]} visual tokens cannot be split into the {crops} crops of image_grid")
    per_crop = features.shape[0] // crops
    out, start = [], 0
    for count in tiles:
        out.append(features[start:start + count * per_crop])
        start += (count + (count > 1)) * per_crop
    return out


def embedding_ctc_sum(sequences: list[torch.Tensor], targets: list[list[int]], embeddings: torch.Tensor,
                      scale: float = 16.0, blank_similarity: float = 0.5) -> torch.Tensor:
    """CTC of each target's token ids read off its visual token sequence, scored in the LM's embedding space.

    Why: a transcription is a copy of the image's text, and an LM copies tokens whose embeddings it sees in its
    context. Trained through the LM alone, the projector never put the visual tokens there (the branch that
    reads and the one that cannot got the same answer loss, docs/ablations/copying.md §4). Here each visual
    token's class scores are its cosine similarity to the (fixed) input embeddings of the micro-batch's target
    tokens, times ``scale``; blank, "no token here", scores ``scale · blank_similarity``, so a visual token
    counts as showing a token only when it points closer to that token's embedding than that. Cosine, not the
    dot product: the LM normalises each position before its first layer, so a visual token's direction is what
    the LM reads, and a free norm cannot be inflated to win the loss. The classes are the micro-batch's own
    targets (a sampled softmax over the 32k vocabulary). Rows with no target add nothing; a target longer
    than its sequence cannot be aligned and adds nothing (``zero_infinity``). Summed over target tokens.
    """
    rows = [i for i, target in enumerate(targets) if target]
    if len(sequences) != len(targets):
        raise ValueError(f"{len(sequences)} visual sequences but {len(targets)} targets")
    if not rows:
        return sum(seq.sum() for seq in sequences) * 0.0
    classes = sorted({token for i in rows for token in targets[i]})
    column = {token: c + 1 for c, token in enumerate(classes)}       # 0 is blank
    vocab = nn.functional.normalize(embeddings[classes].detach().float(), dim=-1)
    log_probs = []
    for i in rows:
        similarity = nn.functional.normalize(sequences[i].float(), dim=-1) @ vocab.T
        blank = similarity.new_full((similarity.shape[0], 1), blank_similarity)
        log_probs.append((scale * torch.cat([blank, similarity], dim=-1)).log_softmax(-1))
    flat = torch.tensor([column[token] for i in rows for token in targets[i]], dtype=torch.long)
    return nn.functional.ctc_loss(
        nn.utils.rnn.pad_sequence(log_probs), flat.to(log_probs[0].device),
        torch.tensor([lp.shape[0] for lp in log_probs]), torch.tensor([len(targets[i]) for i in rows]),
        blank=0, reduction="sum", zero_infinity=True)


def ridge_weights(features: torch.Tensor, targets: torch.Tensor, ridge: float) -> torch.Tensor:
    """(f, hidden) weights of the ridge regression of ``targets`` (n, hidden) on ``features`` (n, f)."""
    gram = features.T @ features + ridge * torch.eye(features.shape[1], dtype=features.dtype, device=features.device)
    return torch.linalg.solve(gram, features.T @ targets)


def jamo_residual_share(embeddings: torch.Tensor, features: torch.Tensor, ridge: float = 1.0) -> torch.Tensor:
    """Share of the syllable tokens' embedding variance that a linear map of their jamo does not explain.

    ``embeddings`` (n, hidden) are the input embeddings of the one-syllable tokens, ``features`` (n, f) their
    jamo (``tokenization.jamo.syllable_jamo_features``). The map is the ridge regression fitted afresh on the
    embeddings themselves, so nothing is learnt outside the model, and the share is near 0 when every
    syllable's embedding is a sum of its jamo's (the ridge keeps it off exactly 0). Why: a projector reading
    jamo can then show the LM syllables no training image had (docs/ablations/copying.md §6). Gradients flow
    through the fit.
    """
    if embeddings.shape[0] != features.shape[0]:
        raise ValueError(f"{embeddings.shape[0]} embeddings but {features.shape[0]} feature rows")
    embeddings = embeddings.float()       # in float32 whatever the training precision: no bf16 solve
    x = features.to(embeddings)
    centred = embeddings - embeddings.mean(0, keepdim=True)
    residual = embeddings - x @ ridge_weights(x, embeddings, ridge)
    return residual.pow(2).sum() / centred.pow(2).sum().clamp_min(1e-12)
