"""Request parameters the way Mastodon clients send them.

Clients send the same parameters as a query string, an urlencoded or multipart form, or a JSON
body, with Rails-style keys (``media_ids[]=1``, ``poll[options][]=a``). :func:`read_params`
merges all of them into one nested dict; :func:`parse` validates it against a pydantic model and
turns failures into a 422 in the API's error shape.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from townsquare.api.errors import ApiError

MAX_JSON_BODY = 1024 * 1024
_KEY_PART = re.compile(r"\[([^\]]*)\]")

Model = TypeVar("Model", bound=BaseModel)


def _assign(target: dict[str, Any], key: str, value: Any) -> None:
    head, _, rest = key.partition("[")
    parts = [head] + (_KEY_PART.findall("[" + rest) if rest else [])
    node: Any = target
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        following = None if last else parts[index + 1]
        if last:
            if part == "":
                if isinstance(node, list):
                    node.append(value)
                return
            if isinstance(node, dict):
                node[part] = value
            return
        if part == "":
            # "a[][b]=1&a[][c]=2&a[][b]=3" is a list of hashes, as in Rails: a key the last
            # hash already has starts the next one.
            if not isinstance(node, list):
                return
            if not node or not isinstance(node[-1], dict) or following in node[-1]:
                node.append({})
            node = node[-1]
            continue
        if not isinstance(node, dict):
            return
        child = node.get(part)
        wanted: type = list if following == "" else dict
        if not isinstance(child, wanted):
            child = wanted()
            node[part] = child
        node = child


def nest(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        _assign(result, key, value)
    return result


async def read_params(request: Request) -> dict[str, Any]:
    """Query string, then form or JSON body, merged (the body wins)."""
    params = nest(list(request.query_params.multi_items()))
    if request.method in ("GET", "HEAD"):
        return params
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        body = await request.body()
        if len(body) > MAX_JSON_BODY:
            raise ApiError(413, "Request body too large")
        if body.strip():
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise ApiError(400, "Request body is not valid JSON") from exc
            if not isinstance(data, dict):
                raise ApiError(400, "Request body must be a JSON object")
            params.update(data)
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.form(max_files=10, max_fields=1000)
        except Exception as exc:
            raise ApiError(400, "Malformed form body") from exc
        params.update(nest(list(form.multi_items())))
    return params


def parse(model: type[Model], params: dict[str, Any]) -> Model:
    """Validate ``params`` against ``model``; failures become a 422 naming the fields."""
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:5]:
            where = ".".join(str(p) for p in error["loc"])
            problems.append(f"{where}: {error['msg']}" if where else error["msg"])
        raise ApiError(422, "Validation failed: " + "; ".join(problems)) from exc


def upload(params: dict[str, Any], name: str) -> UploadFile | None:
    value = params.get(name)
    return value if isinstance(value, UploadFile) else None


def as_list(value: Any) -> list[Any]:
    """``ids[]=1&ids[]=2``, ``ids=1`` and JSON ``[1, 2]`` all become a list."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def as_id(value: Any, what: str = "id") -> int:
    """Parse a snowflake id from a path or parameter; malformed ids are simply not found."""
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        raise ApiError(404, "Record not found") from None
    if number <= 0 or number >= 2**63:
        raise ApiError(404, "Record not found")
    return number
