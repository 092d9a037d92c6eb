"""A copy head: the LM's next token as a mix of generating and copying a token from earlier in the input.

The tiny LM trained on this CPU does not learn to copy from its context (docs/ablations/copying.md §2–§3:
induction forms only after far more tokens than the CPU gives it), so text that the prompt already holds,
such as the reading head's reading of the image, never reaches the answer. A pointer (See et al. 2017,
"Get To The Point") gives it the copy directly: at position ``t`` attention over the earlier positions ``j``
picks the token that followed ``j`` (``x[j+1]``), and a gate mixes that distribution with the LM's own.

Matching the last tokens before ``t`` against those before ``j`` is what an induction head learns; here it is
built in as fixed features (the cosines of the embeddings of ``x[t-k]`` and ``x[j-k]`` for the last
``MATCH_CONTEXT`` tokens, so a run of dots or a repeated word does not send the copy back to another place),
plus learnt query/key projections for what the features cannot tell (where the answer starts). Keys use token
embeddings only, so generating with a KV cache needs just the ids seen so far (``copy_source_ids``), not the
earlier hidden states. A copy comes from the conversation before the answer being written, never from that
answer itself: copying from its own last words is how a pointer loops.
"""

from __future__ import annotations

import torch
from torch import nn

# the fixed features' starting weights, for x[t] ~ x[j], x[t-1] ~ x[j-1], …: a place whose last four tokens
# match scores 15, one that matches x[t] alone 8, so from the first step the copy follows the longest match
MATCH_INIT = (8.0, 4.0, 2.0, 1.0)
MATCH_CONTEXT = len(MATCH_INIT)
# a place whose pair (x[j], x[j+1]) the answer has written already scores this much less, so a copy that reaches
# a line break does not start over from the first line break it matches (the loop a pointer falls into)
REPEAT_PENALTY_INIT = 8.0
KEY_SIZE = 64


class CopyHead(nn.Module):
    def __init__(self, hidden_size: int, embedding_size: int, key_size: int = KEY_SIZE):
        super().__init__()
        self.query = nn.Linear(hidden_size + 2 * embedding_size, key_size, bias=False)
        self.key = nn.Linear(2 * embedding_size, key_size, bias=False)
        self.match_weights = nn.Parameter(torch.tensor(MATCH_INIT))
        self.repeat_penalty = nn.Parameter(torch.tensor(REPEAT_PENALTY_INIT))
        # what the pointer points at (the token it would copy and the one after it) informs the gate and the
        # LM's own distribution: after the last copied token of a span comes something that must not be copied
        self.context = nn.Linear(2 * embedding_size, hidden_size, bias=False)
        self.gate = nn.Linear(hidden_size + 2 * embedding_size, 1)

    def reset_parameters(self) -> None:
        """Starting weights: learnt scores and the context's push start at zero, the gate at one half.

        transformers' guarded init functions leave alone what a checkpoint loaded, so a checkpoint that lacks one
        of these weights (made before it existed) keeps the others as trained.
        """
        from transformers import initialization as init

        init.zeros_(self.query.weight)
        init.normal_(self.key.weight, std=0.02)
        init.zeros_(self.context.weight)
        init.zeros_(self.gate.weight)
        init.zeros_(self.gate.bias)
        init.copy_(self.match_weights, torch.tensor(MATCH_INIT))
        init.constant_(self.repeat_penalty, REPEAT_PENALTY_INIT)

    def forward(self, hidden: torch.Tensor, positions: torch.Tensor, source_ids: torch.Tensor,
                source_mask: torch.Tensor, answer_starts: torch.Tensor, embeddings: nn.Embedding,
                lm_head: nn.Module, copyable: torch.Tensor) -> torch.Tensor:
        """Log-probabilities (batch, T, vocab) of the next token after each of ``positions`` (T,) of ``source_ids``.

        ``hidden``: the LM's final hidden states at those positions (batch, T, hidden); ``source_ids`` and
        ``source_mask``: every id so far and which are real (batch, L); ``answer_starts``: (batch, T), where the
        answer that position ``t`` is part of begins (a copy offers only tokens before it; 0 lets it copy from
        anything before ``t``); ``copyable``: (vocab,) bool, the ids a copy may produce (not the image
        placeholder or padding).
        """
        batch, steps, _ = hidden.shape
        length = source_ids.shape[1]
        real = source_mask.bool()
        embedded = embeddings(source_ids).to(hidden.dtype) * real[..., None]
        token_features = torch.cat([embedded, shifted(embedded, -1)], dim=-1)     # (B, L, 2E): x[j], x[j-1]
        here = token_features[:, positions]                                        # (B, T, 2E)
        scores = self.query(torch.cat([hidden, here], dim=-1)) @ self.key(token_features).mT
        scores = scores / self.query.out_features ** 0.5
        unit = nn.functional.normalize(embedded, dim=-1)
        for back in range(MATCH_CONTEXT):          # x[t-back] against x[j-back]
            earlier = shifted(unit, -back)
            scores = scores + self.match_weights[back] * (earlier[:, positions] @ earlier.mT)

        scores = scores - self.repeat_penalty * written_already(source_ids, positions, answer_starts).to(scores.dtype)

        # position j offers x[j+1]: it must exist, be real and copyable, and come before the answer being written
        source_positions = torch.arange(length, device=hidden.device)
        offered = shifted(source_ids, 1)
        offer_ok = copyable[offered] & real & shifted(real, 1)
        # j + 1 <= t, and x[j+1] before the answer's opening marker (at start - 1)
        limit = torch.where(answer_starts > 0, torch.minimum(positions[None, :], answer_starts - 2), positions[None, :])
        allowed = (source_positions[None, None, :] < limit[..., None]) & offer_ok[:, None, :]
        scores = scores.float().masked_fill(~allowed, float("-inf"))
        any_offer = allowed.any(-1, keepdim=True)
        attention = torch.where(any_offer, scores.softmax(-1), torch.zeros_like(scores))   # no offer: no copy

        offered_features = torch.cat([shifted(embedded, 1), shifted(embedded, 2)], dim=-1)   # x[j+1], x[j+2]
        context = attention.to(hidden.dtype) @ offered_features                    # (B, T, 2E)
        generated = lm_head(hidden + self.context(context)).float().log_softmax(-1)
        gate = self.gate(torch.cat([hidden, context], dim=-1)).float()
        copy = torch.zeros(batch, steps, generated.shape[-1], device=hidden.device, dtype=torch.float32)
        copy.scatter_add_(-1, offered[:, None, :].expand(batch, steps, length), attention)
        # where nothing can be copied (the first position) the LM's own distribution stands alone
        log_generate = torch.where(any_offer, nn.functional.logsigmoid(gate), 0.0) + generated
        log_copy = nn.functional.logsigmoid(-gate) + copy.clamp_min(1e-30).log()
        log_copy = log_copy.masked_fill(~any_offer, float("-inf"))
        return torch.logaddexp(log_generate, log_copy)


def written_already(source_ids: torch.Tensor, positions: torch.Tensor, answer_starts: torch.Tensor) -> torch.Tensor:
    """(batch, T, L) bool: whether the answer up to each of ``positions`` has written the pair (x[j], x[j+1]) already,
    i.e. some t' in [answer start, t] has x[t'-1] = x[j] and x[t'] = x[j+1]; False outside an answer."""
    batch, length = source_ids.shape
    following = shifted(source_ids, 1)
    before = shifted(source_ids, -1)
    # pairs[b, j, u]: the pair offered at j is the pair that ends at u
    pairs = (source_ids[:, :, None] == before[:, None, :]) & (following[:, :, None] == source_ids[:, None, :])
    pairs[:, -1, :] = False                      # the last j offers nothing
    written = pairs.int().cumsum(dim=2)          # pairs ending at or before u
    upto = written.gather(2, positions[None, None, :].expand(batch, length, -1))                  # (B, L, T)
    start = (answer_starts - 1).clamp(min=0)
    ahead = written.gather(2, start[:, None, :].expand(batch, length, -1))                        # ending before start
    inside = (answer_starts > 0)[:, None, :]
    return ((upto - ahead > 0) & inside).transpose(1, 2)


def answer_starts(source_ids: torch.Tensor, positions: torch.Tensor, marker_id: int | None) -> torch.Tensor:
    """(batch, T): for each of ``positions``, the position after the last ``marker_id`` (the assistant turn's
    opening token) at or before it, where the answer being written begins; 0 where there is none (or no marker)."""
    batch, length = source_ids.shape
    if marker_id is None:
        return torch.zeros(batch, positions.shape[0], dtype=torch.long, device=source_ids.device)
    index = torch.arange(1, length + 1, device=source_ids.device)
    last_marker = torch.where(source_ids == marker_id, index, 0).cummax(dim=1).values   # marker position + 1
    return last_marker[:, positions]


def shifted(values: torch.Tensor, by: int) -> torch.Tensor:
    """``values`` (batch, L, …) moved ``by`` positions earlier along dim 1 (later where ``by`` < 0), zeros filling."""
    if by == 0:
        return values
    if abs(by) >= values.shape[1]:
        return torch.zeros_like(values)
    if by > 0:
        return torch.cat([values[:, by:], torch.zeros_like(values[:, :by])], dim=1)
    return torch.cat([torch.zeros_like(values[:, :-by]), values[:, :by]], dim=1)
