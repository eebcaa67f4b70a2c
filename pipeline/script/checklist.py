"""Sales scripts as versioned checklists: YAML files validated with pydantic.

A checklist names its steps in the order the script expects them, each with
one or more example phrasings the aligner learns from. The canonical content
(parsed, validated, re-serialised with sorted keys) is hashed, so each
distinct content is one stored version no matter how the YAML is formatted.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from pipeline.errors import ChecklistError

ID_PATTERN = r"^[a-z0-9][a-z0-9_\-]*$"
# The label of an operator sentence that does no step of the script.
OFF_SCRIPT = "off_script"


class Step(BaseModel):
    """One step of the script. Unknown keys are kept (and hashed) as-is."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(pattern=ID_PATTERN, max_length=100)
    title: str = Field(min_length=1)
    description: str = ""
    required: bool = True
    # A step that may occur at any point of the call (objection handling):
    # the aligner charges no order penalty for it.
    anywhere: bool = False
    examples: list[str] = Field(min_length=1)
    # What a client says that calls for this step ("дорого", "я подумаю"):
    # an operator sentence right after such a turn is more likely this step.
    client_cues: list[str] = Field(default_factory=list)

    @field_validator("examples", "client_cues")
    @classmethod
    def _examples_not_blank(cls, value: list[str]) -> list[str]:
        cleaned = [e.strip() for e in value]
        if any(not e for e in cleaned):
            raise ValueError("an example is empty; write a phrase the operator says")
        return cleaned


class Checklist(BaseModel):
    """A sales script: ordered steps plus identity (``id``) and human ``version``."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(pattern=ID_PATTERN, max_length=200)
    title: str = Field(min_length=1)
    version: int = Field(ge=0)
    language: str = "ru"
    steps: list[Step] = Field(min_length=1)

    _source: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _unique_step_ids(self) -> "Checklist":
        seen: set[str] = set()
        for i, step in enumerate(self.steps):
            if step.id in seen:
                raise _DuplicateStep(i, step.id)
            seen.add(step.id)
        return self

    @property
    def source(self) -> str | None:
        """The file this checklist was loaded from, if any."""
        return self._source

    def canonical(self) -> dict[str, Any]:
        """The content that identifies a version (formatting and comments excluded)."""
        return self.model_dump(mode="json")

    @property
    def sha256(self) -> str:
        data = json.dumps(self.canonical(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(data.encode("utf-8")).hexdigest()

    @property
    def step_ids(self) -> list[str]:
        return [s.id for s in self.steps]

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def ref(self) -> dict[str, Any]:
        """What every alignment records about the script it used."""
        return {"id": self.id, "version": self.version, "sha256": self.sha256}


class _DuplicateStep(ValueError):
    def __init__(self, index: int, step_id: str) -> None:
        super().__init__(f"duplicate step id {step_id!r}; each step needs its own id")
        self.index = index
        self.step_id = step_id


# --- loading with precise messages ------------------------------------------


def _node_at(root: yaml.Node | None, loc: tuple[Any, ...]) -> tuple[yaml.Node | None, bool]:
    """Walk the composed YAML tree along a pydantic error location.

    Returns the deepest node reached and whether the full path was found (a
    missing field points at its parent mapping)."""
    node = root
    for key in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(key, str):
            child = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
            child = node.value[key]
        else:
            child = None
        if child is None:
            return node, False
        node = child
    return node, True


def _field_name(loc: tuple[Any, ...], data: Any) -> str:
    """`steps[2].examples` or, better, `steps[2] (budget).examples`."""
    parts: list[str] = []
    cur = data
    for key in loc:
        if isinstance(key, int):
            label = f"[{key}]"
            item = cur[key] if isinstance(cur, list) and key < len(cur) else None
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                label += f" ({item['id']})"
            parts.append(label)
            cur = item
        else:
            parts.append(("." if parts else "") + str(key))
            cur = cur.get(key) if isinstance(cur, dict) else None
    return "".join(parts) or "(top level)"


def parse_checklist(text: str, source: str = "<string>") -> Checklist:
    """Parse and validate checklist YAML; errors name the source, line and field."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f", line {mark.line + 1}" if mark else ""
        raise ChecklistError(
            f"{source}{line}: not valid YAML ({exc.problem or exc}); check indentation and quotes near that line"
        ) from None
    except yaml.YAMLError as exc:
        raise ChecklistError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ChecklistError(f"{source}, line 1: a checklist must be a mapping with id, title, version and steps")
    try:
        checklist = Checklist.model_validate(data)
    except ValidationError as exc:
        messages = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            ctx_error = (err.get("ctx") or {}).get("error")
            if isinstance(ctx_error, _DuplicateStep):
                loc = ("steps", ctx_error.index, "id")
                msg = str(ctx_error)
            elif err["type"] == "missing":
                msg = "required field is missing"
            elif err["type"] == "too_short":
                msg = "must list at least one item"
            else:
                msg = err["msg"].removeprefix("Value error, ")
            node, complete = _node_at(root, loc)
            line = f", line {node.start_mark.line + 1}" if node is not None else ""
            messages.append(f"{source}{line}: field {_field_name(loc, data)}: {msg}")
        raise ChecklistError("; ".join(messages)) from None
    checklist._source = source
    return checklist


def load_checklist(path: str | Path) -> Checklist:
    """Load a checklist YAML file (see ``checklists/``) or raise ChecklistError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ChecklistError(f"{path}: checklist file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ChecklistError(f"{path}: cannot read the checklist ({exc})") from None
    return parse_checklist(text, source=str(path))
