"""Special tokens reserved in the vocabulary at training time.

Adding tokens after training shifts or breaks some tokenizers, so everything the VLM and the chat
format will need is reserved up front: padding/sequence marks, chat roles, the image placeholder,
image/thumbnail brackets, tile row/column markers (up to 8×8 tiles) and spare slots.
"""

PAD = "<|pad|>"
BOS = "<|bos|>"
EOS = "<|eos|>"
UNK = "<|unk|>"  # byte-level BPE never needs it; reserved so every HF code path has one
SYSTEM, USER, ASSISTANT, END = "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"
IMAGE = "<image>"
IMAGE_START, IMAGE_END, GLOBAL_IMAGE = "<|image_start|>", "<|image_end|>", "<|global_image|>"
MAX_TILE_GRID = 8
NUM_RESERVED = 16


def tile_token(row: int, col: int) -> str:
    """Marker placed before the tile in ``row``, ``col`` (1-based, as in SmolVLM)."""
    if not (1 <= row <= MAX_TILE_GRID and 1 <= col <= MAX_TILE_GRID):
        raise ValueError(f"tile ({row}, {col}) outside the reserved {MAX_TILE_GRID}×{MAX_TILE_GRID} grid")
    return f"<row_{row}_col_{col}>"


SPECIAL_TOKENS: list[str] = [
    PAD, BOS, EOS, UNK, SYSTEM, USER, ASSISTANT, END, IMAGE, IMAGE_START, IMAGE_END, GLOBAL_IMAGE,
    *(tile_token(r, c) for r in range(1, MAX_TILE_GRID + 1) for c in range(1, MAX_TILE_GRID + 1)),
    *(f"<|reserved_{i}|>" for i in range(NUM_RESERVED)),
]

# {% raw %}-free Jinja: user/system/assistant turns, each closed by <|end|>; generation prompt opens an assistant turn
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>' }}{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
