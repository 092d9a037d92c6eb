"""The error an evaluation raises for bad input (a wrong model path, a missing data folder, nothing selected)."""


class EvalInputError(ValueError):
    """The evaluation's inputs are unusable; the message says which and what to do. The CLI exits with 2."""
