"""One checkpoint's encoders, projectors and VRC with another checkpoint's language model (docs/ablations/copying.md).

The reading stage trains only the encoders (and its CTC heads), so a checkpoint read with one LM and given
another LM afterwards is the checkpoint the reading stage would have made on top of that other LM:

    python docs/ablations/swap_lm.py runs/tr5/read/final runs/plateau/copy-lm runs/plateau/read-copy-lm
"""

from __future__ import annotations

import argparse

from ko_hypervl.checkpoint import load_checkpoint, save_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vision", help="checkpoint whose everything-but-the-LM is kept")
    parser.add_argument("language", help="checkpoint whose language model is taken")
    parser.add_argument("out")
    args = parser.parse_args()
    model, processor = load_checkpoint(args.vision)
    donor, donor_processor = load_checkpoint(args.language)
    if processor.tokenizer.get_vocab() != donor_processor.tokenizer.get_vocab():
        parser.error("the two checkpoints have different tokenizers; an LM only fits the tokenizer it learnt")
    if model.config.text_config.to_dict() != donor.config.text_config.to_dict():
        parser.error("the two language models have different configs")
    model.language_model.load_state_dict(donor.language_model.state_dict())
    save_checkpoint(model.eval(), processor, args.out)


if __name__ == "__main__":
    main()
