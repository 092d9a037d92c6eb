"""Re-render the demo's example gallery (ko_hypervl/assets/examples) with the corpus generators."""

from ko_hypervl.serving.examples import EXAMPLES_DIR, render_examples

if __name__ == "__main__":
    for example in render_examples():
        print(f"{example.file:14s} {example.kind:7s} {example.question}  →  {example.answer}")
    print(f"wrote {EXAMPLES_DIR}")
