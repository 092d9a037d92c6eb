"""Settings are dataclasses; command-line flags are generated from them.

Each field becomes ``--field-name`` with its default, its type and the ``help`` text stored in the
field's metadata, so a setting is declared once and the CLI, the Python API and the saved run
configuration all agree on its name and default.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def setting(default: Any = dataclasses.MISSING, *, help: str, choices: tuple | None = None, **kwargs: Any) -> Any:
    """A dataclass field that carries its CLI help text (and optional choices)."""
    metadata = {"help": help}
    if choices is not None:
        metadata["choices"] = choices
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None)) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


def add_settings_arguments(parser: argparse.ArgumentParser, cls: type, positional: tuple[str, ...] = ()) -> None:
    """Add one flag per field of the dataclass ``cls`` to ``parser``.

    Fields named in ``positional`` become positional arguments instead (required ones; a list takes 1+ values).
    """
    hints = typing.get_type_hints(cls)
    names = {field.name for field in dataclasses.fields(cls)}
    unknown = set(positional) - names
    if unknown:
        raise TypeError(f"{cls.__name__} has no setting(s) {sorted(unknown)}")
    for field in dataclasses.fields(cls):
        tp, optional = _unwrap_optional(hints[field.name])
        help_text = field.metadata.get("help", "")
        if field.name in positional:
            many = typing.get_origin(tp) in (list, tuple)
            item_type = (typing.get_args(tp) or (str,))[0] if many else tp
            metavar = field.name[:-1] if many and field.name.endswith("s") else field.name
            parser.add_argument(field.name, help=help_text, type=item_type, metavar=metavar.upper(),
                                nargs="+" if many else None)
            continue
        kwargs: dict[str, Any] = {"dest": field.name}
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        if required:
            kwargs["required"] = True
        else:
            default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
            kwargs["default"] = default
            help_text = f"{help_text} (default: {default})" if default not in (None, "") else help_text
        if "choices" in field.metadata:
            kwargs["choices"] = field.metadata["choices"]
        origin = typing.get_origin(tp)
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif origin in (list, tuple):
            (item_type, *_) = typing.get_args(tp) or (str,)
            kwargs["nargs"] = "+"
            kwargs["type"] = item_type
        elif tp in (int, float, str, Path):
            kwargs["type"] = tp
        else:
            raise TypeError(f"setting {cls.__name__}.{field.name}: unsupported type {tp!r}")
        parser.add_argument(_flag(field.name), help=help_text, **kwargs)


def settings_from_args(cls: type[T], namespace: argparse.Namespace) -> T:
    """Build the dataclass ``cls`` from the parsed flags that ``add_settings_arguments`` added."""
    values = {f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls) if hasattr(namespace, f.name)}
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        tp, _ = _unwrap_optional(hints[name])
        if typing.get_origin(tp) is tuple and isinstance(value, list):
            values[name] = tuple(value)
    return cls(**values)


def parse_setting(cls: type, name: str, text: str) -> Any:
    """``text`` as the value of ``cls``'s field ``name``, typed as its flag would parse it (lists: comma-separated).

    For settings given as ``FIELD=VALUE`` strings rather than flags (``ko-hypervl train pipeline --override``)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        raise ValueError(f"{cls.__name__} has no setting {name!r}; it has {', '.join(sorted(fields))}")
    tp, optional = _unwrap_optional(typing.get_type_hints(cls)[name])
    if optional and text.lower() == "none":
        return None
    try:
        if tp is bool:
            words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
            value = words[text.lower()]
        elif typing.get_origin(tp) in (list, tuple):
            (item_type, *_) = typing.get_args(tp) or (str,)
            value = typing.get_origin(tp)(item_type(item) for item in text.split(",") if item)
        else:
            value = tp(text)
    except (KeyError, ValueError, TypeError):
        raise ValueError(f"{cls.__name__}.{name}: {text!r} is not a valid {getattr(tp, '__name__', tp)}") from None
    choices = fields[name].metadata.get("choices")
    if choices is not None and value not in choices:
        raise ValueError(f"{cls.__name__}.{name}: {text!r} is not one of {', '.join(map(str, choices))}")
    return value


def settings_dict(settings) -> dict:
    """A settings dataclass as JSON-ready values (paths as strings, in lists too), for run records and model cards."""
    return {k: _json_ready(v) for k, v in dataclasses.asdict(settings).items()}


def _json_ready(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_json_ready(v) for v in value)
    return value
