"""The error an evaluation raises for bad input (a wrong model path, a missing data folder, nothing selected)."""


class EvalInputError(ValueError):
    """The evaluation's inputs are unusable; the message says which and what to do. The CLI exits with 2."""


def checkpoint_list(models) -> list[str]:
    """``--models`` as a list of path strings (one path given alone is a list of one); none at all is an error."""
    models = [models] if isinstance(models, (str, bytes)) or hasattr(models, "__fspath__") else list(models)
    if not models:
        raise EvalInputError("give at least one checkpoint directory")
    return [str(model) for model in models]
