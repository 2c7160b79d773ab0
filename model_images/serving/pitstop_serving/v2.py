"""The Open Inference Protocol (KServe/Triton "V2") as a translation of the native API.

Owns: reading a V2 infer request (tensors by feature name, JSON or Triton's binary
tensor data) into the native request body, writing a native answer as V2 outputs, the
V2 metadata documents, and the V2 paths. It does no I/O and checks no feature value:
values are validated by the native `inputs.Schema`, on the native body built here, so
both protocols refuse exactly the same rows with the same checks. This module checks
only the tensor framing (names, datatypes, shapes) and names the native problems by
the paths a V2 client sent (`inputs[2].data[5]`, `inputs.amount` for a missing input).

Each input is one feature: a column of N rows, shape [N] (or [N, 1]). A model whose
features are all numeric also takes one input named like the model, of shape
[N, n_features], the features in signature order.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pitstop.packaging import signature as signature_

from pitstop_serving import inputs

SERVER = "pitstop"
PREFIX = "/v2"
FLOATS = ("FP16", "FP32", "FP64")
INTEGERS = ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
# Little-endian layouts of Triton's binary tensor data extension (BYTES: each element
# a 4-byte length, then its bytes).
LAYOUT = {
    "BOOL": "?", "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}  # fmt: skip
EXTENSIONS = ["binary_tensor_data"]


def _label_type(labels: Sequence[Any]) -> str:
    kinds = {type(label) for label in labels}
    if kinds == {bool}:
        return "BOOL"
    if kinds == {int}:
        return "INT64"
    if kinds <= {int, float}:
        return "FP64"
    return "BYTES"


def accepted(feature: signature_.Feature) -> tuple[str, ...]:
    """The V2 datatypes a feature's tensor may have (the first is the one declared)."""
    if feature.kind == "number":
        return ("FP64", "FP32", "FP16", *INTEGERS)  # as natively: integers are numbers
    if feature.kind == "integer":
        return ("INT64", *[t for t in INTEGERS if t != "INT64"])
    if feature.kind == "boolean":
        return ("BOOL",)
    declared = _label_type(feature.categories or [])
    return (declared,) if declared != "FP64" else ("FP64", "FP32", *INTEGERS)


@dataclass(frozen=True)
class Route:
    """A V2 path taken apart: `what` is "server", "live", "ready", "model",
    "model-ready" or "infer"; `model` and `version` as the path names them."""

    what: str
    model: str = ""
    version: str = ""


def route(path: str) -> Route | None:
    """The V2 route of `path`; None for a path that is not one."""
    parts = path[len(PREFIX) :].strip("/").split("/") if path != PREFIX else [""]
    if parts == [""]:
        return Route("server")
    if parts[0] == "health" and len(parts) == 2 and parts[1] in ("live", "ready"):
        return Route(parts[1])
    if parts[0] != "models" or len(parts) < 2 or not parts[1]:
        return None
    model, rest, version = parts[1], parts[2:], ""
    if len(rest) >= 2 and rest[0] == "versions":
        version, rest = rest[1], rest[2:]
    if not rest:
        return Route("model", model, version)
    if rest == ["ready"]:
        return Route("model-ready", model, version)
    if rest == ["infer"]:
        return Route("infer", model, version)
    return None


@dataclass(frozen=True)
class Request:
    """A V2 infer request read into the native body, with what the answer needs."""

    native: bytes  # the native /predict body: a JSON array of row objects
    id: str | None
    outputs: tuple[str, ...] | None  # the outputs asked for; None: all
    paths: dict[str, str]  # feature -> its V2 path up to the row index, e.g. "inputs[2].data"
    matrix: bool  # one [N, n_features] input


def _refuse(field: str, path: str, message: str, status: int = 422) -> inputs.Invalid:
    problem = inputs.Problem(field=field, row=None, message=message, path=path)
    return inputs.Invalid(status, f"invalid request: {path}: {message}", [problem])


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class Protocol:
    """The V2 face of one served model."""

    def __init__(self, signature: signature_.Signature, name: str, version: str) -> None:
        self.signature, self.name, self.version = signature, name, version
        self.features = {f.name: f for f in signature.features}
        self.names = signature.names
        self.numeric = all(f.kind != "category" for f in signature.features)
        output = signature.output
        self.probabilities = output.kind == "classification" and output.probabilities
        self.classes = output.classes or []
        self.prediction_type = "FP64" if output.kind == "regression" else _label_type(self.classes)
        self.output_names = (
            ("predictions", "probabilities") if self.probabilities else ("predictions",)
        )

    # --- metadata -------------------------------------------------------------------

    def server_metadata(self) -> bytes:
        return json.dumps({"name": SERVER, "version": "2", "extensions": EXTENSIONS}).encode()

    def metadata(self) -> bytes:
        tensors = [
            {"name": f.name, "datatype": accepted(f)[0], "shape": [-1]}
            for f in self.signature.features
        ]
        outputs = [{"name": "predictions", "datatype": self.prediction_type, "shape": [-1]}]
        if self.probabilities:
            outputs.append(
                {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(self.classes)]}
            )
        return json.dumps(
            {
                "name": self.name,
                "versions": [self.version],
                "platform": "pitstop",
                "inputs": tensors,
                "outputs": outputs,
            }
        ).encode()

    def serves(self, found: Route) -> bool:
        return found.model == self.name and found.version in ("", self.version)

    # --- requests -------------------------------------------------------------------

    def decode(self, body: bytes, header_length: int | None) -> Request:
        """The native body of a V2 infer request; raises `inputs.Invalid` (4xx)."""
        binary = b""
        if header_length is not None:
            if not 0 < header_length <= len(body):
                raise inputs.Invalid(400, "Inference-Header-Content-Length exceeds the body")
            body, binary = body[:header_length], body[header_length:]
        if not body.strip():
            raise inputs.Invalid(400, "the request body is empty")
        try:
            request = json.loads(body, parse_constant=_no_constants)
        except ValueError as error:
            raise inputs.Invalid(400, f"the body is not valid JSON: {error}") from None
        if not isinstance(request, dict):
            raise _refuse(inputs.BODY, "(body)", "a V2 request is a JSON object")
        found = request.get("inputs")
        if not isinstance(found, list) or not found:
            raise _refuse(inputs.BODY, "inputs", "a non-empty list of input tensors is required")
        request_id = request.get("id")
        if request_id is not None and not isinstance(request_id, str):
            raise _refuse(inputs.BODY, "id", "the request id must be a string")
        wanted = self._outputs(request.get("outputs"))
        tensors, offset = [], 0
        for index, tensor in enumerate(found):
            data, offset = self._data(tensor, index, binary, offset)
            tensors.append((index, tensor, data))
        if offset != len(binary):
            raise inputs.Invalid(
                400, f"{len(binary) - offset} bytes of binary data follow no input"
            )
        name = tensors[0][1]["name"]
        if len(tensors) == 1 and name == self.name and name not in self.features and self.numeric:
            rows, paths = self._matrix(*tensors[0]), {n: "inputs[0].data" for n in self.names}
            matrix = True
        else:
            rows, paths = self._columns(tensors), {}
            matrix = False
            for index, tensor, _ in tensors:
                paths[tensor["name"]] = f"inputs[{index}].data"
        try:
            native = json.dumps(rows, allow_nan=False).encode()
        except ValueError:
            raise _refuse(inputs.BODY, "inputs", "values must be finite numbers") from None
        return Request(native, request_id, wanted, paths, matrix)

    def _outputs(self, asked: Any) -> tuple[str, ...] | None:
        if asked is None:
            return None
        if not isinstance(asked, list):
            raise _refuse(inputs.BODY, "outputs", "outputs must be a list of {name}")
        names: list[str] = []
        for index, output in enumerate(asked):
            name = output.get("name") if isinstance(output, dict) else None
            if name not in self.output_names:
                raise _refuse(
                    inputs.BODY, f"outputs[{index}].name",
                    f"unknown output {name!r}; this model has {', '.join(self.output_names)}",
                )  # fmt: skip
            names.append(str(name))
        return tuple(names)

    def _data(self, tensor: Any, index: int, binary: bytes, offset: int) -> tuple[list[Any], int]:
        """The tensor's elements, flat in row-major order, checked against its shape."""
        at = f"inputs[{index}]"
        if not isinstance(tensor, dict):
            raise _refuse(inputs.BODY, at, "an input tensor is an object")
        name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
        if not isinstance(name, str):
            raise _refuse(inputs.BODY, f"{at}.name", "the input's name is required")
        field = name if name in self.features else inputs.BODY
        if not isinstance(datatype, str):
            raise _refuse(field, f"{at}.datatype", "the input's datatype is required")
        if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
            raise _refuse(field, f"{at}.shape", "the shape must be a list of sizes")
        size = int(np.prod(shape)) if shape else 1
        parameters = tensor.get("parameters") or {}
        length = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if length is not None:
            if type(length) is not int or not 0 <= length <= len(binary) - offset:
                raise inputs.Invalid(400, f"{at}: binary_data_size exceeds the binary data")
            data = self._binary(binary[offset : offset + length], datatype, size, field, at)
            offset += length
        elif "data" not in tensor:
            raise _refuse(field, f"{at}.data", "the input has no data")
        else:
            data = _flat(tensor["data"])
        if len(data) != size:
            raise _refuse(
                field, f"{at}.shape", f"shape {shape} holds {size} values, the data has {len(data)}"
            )
        return data, offset

    def _binary(self, raw: bytes, datatype: str, size: int, field: str, at: str) -> list[Any]:
        if datatype == "BYTES":
            strings, position = [], 0
            try:
                while position < len(raw):
                    (length,) = struct.unpack_from("<I", raw, position)
                    end = position + 4 + length
                    if end > len(raw):
                        raise ValueError("truncated")
                    strings.append(raw[position + 4 : end].decode())
                    position = end
            except (ValueError, struct.error):
                raise _refuse(field, f"{at}.data", "BYTES elements are not UTF-8 strings") from None
            return strings
        layout = LAYOUT.get(datatype)
        if layout is None:
            raise _refuse(field, f"{at}.datatype", f"unknown datatype {datatype!r}")
        width = np.dtype(layout).itemsize
        if len(raw) != size * width:
            raise _refuse(field, f"{at}.shape", f"{len(raw)} bytes are not {size} {datatype}")
        values: list[Any] = np.frombuffer(raw, dtype=layout).tolist()
        return values

    def _columns(self, tensors: list[tuple[int, Any, list[Any]]]) -> list[dict[str, Any]]:
        columns: dict[str, list[Any]] = {}
        first: tuple[int, int] | None = None
        for index, tensor, data in tensors:
            at, name, shape = f"inputs[{index}]", tensor["name"], tensor["shape"]
            feature = self.features.get(name)
            if feature is None:
                raise _refuse(
                    inputs.UNKNOWN_FIELD, f"{at}.name",
                    f"unknown input {name!r}; the model's inputs are {', '.join(self.names)}",
                )  # fmt: skip
            if name in columns:
                raise _refuse(name, f"{at}.name", f"input {name!r} is given twice")
            datatype = tensor["datatype"]
            if datatype not in accepted(feature):
                raise _refuse(
                    name, f"{at}.datatype",
                    f"{name} is {feature.kind}: {datatype} is not one of "
                    f"{', '.join(accepted(feature))}",
                )  # fmt: skip
            if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
                raise _refuse(
                    name, f"{at}.shape", f"a feature is one column: [N] or [N, 1], not {shape}"
                )
            if first is None:
                first = (index, shape[0])
            elif shape[0] != first[1]:
                raise _refuse(
                    name, f"{at}.shape",
                    f"{shape[0]} rows, but inputs[{first[0]}] has {first[1]}",
                )  # fmt: skip
            columns[name] = data
        missing = [n for n in self.names if n not in columns]
        if missing:
            problems = [
                inputs.Problem(field=n, row=None, message="missing input", path=f"inputs.{n}")
                for n in missing
            ]
            summary = "; ".join(f"inputs.{n}: missing input" for n in missing[:5])
            raise inputs.Invalid(422, f"invalid request: {summary}", problems)
        if first is None or first[1] == 0:
            raise _refuse(inputs.BODY, "inputs", "the inputs hold no rows")
        ordered = [columns[n] for n in self.names]
        names = self.names
        return [dict(zip(names, values, strict=True)) for values in zip(*ordered, strict=True)]

    def _matrix(self, index: int, tensor: Any, data: list[Any]) -> list[dict[str, Any]]:
        shape, datatype, width = tensor["shape"], tensor["datatype"], len(self.names)
        if datatype not in (*FLOATS, *INTEGERS, "BOOL"):
            raise _refuse(inputs.BODY, "inputs[0].datatype", f"{datatype} is not numeric")
        if len(shape) != 2 or shape[1] != width or shape[0] == 0:
            raise _refuse(
                inputs.BODY, "inputs[0].shape", f"the matrix input is [N, {width}], not {shape}"
            )
        kinds = [self.features[n].kind for n in self.names]
        rows = []
        for start in range(0, len(data), width):
            row = {}
            for name, kind, value in zip(
                self.names, kinds, data[start : start + width], strict=True
            ):
                # One tensor has one datatype: whole floats are integers, 0/1 booleans,
                # for the columns whose features say so (anything else stays, refused).
                if kind == "integer" and isinstance(value, float) and value.is_integer():
                    value = int(value)
                elif kind == "boolean" and type(value) in (int, float) and value in (0, 1):
                    value = bool(value)
                elif kind == "number" and isinstance(value, bool):
                    value = float(value)
                row[name] = value
            rows.append(row)
        return rows

    def rename(self, invalid: inputs.Invalid, request: Request) -> inputs.Invalid:
        """A native refusal of the rows, its problems named by the request's V2 paths."""
        if not invalid.problems:
            return invalid
        width = len(self.names)
        problems = []
        for problem in invalid.problems:
            base = request.paths.get(problem.field)
            if base is None:
                path = "inputs"
            elif problem.row is None:
                path = base
            elif request.matrix:
                path = f"{base}[{problem.row * width + self.names.index(problem.field)}]"
            else:
                path = f"{base}[{problem.row}]"
            problems.append(inputs.Problem(problem.field, problem.row, problem.message, path=path))
        summary = "; ".join(f"{p.path} ({p.field}): {p.message}" for p in problems[:5])
        return inputs.Invalid(invalid.status, f"invalid request: {summary}", problems)

    # --- answers --------------------------------------------------------------------

    def encode(self, result: dict[str, Any], request: Request) -> bytes:
        predictions = result["predictions"]
        rows = len(predictions)
        if self.prediction_type == "BYTES":
            predictions = [p if isinstance(p, str) else json.dumps(p) for p in predictions]
        outputs = []
        for name in request.outputs or self.output_names:
            if name == "predictions":
                outputs.append(
                    {"name": name, "shape": [rows], "datatype": self.prediction_type,
                     "data": predictions}
                )  # fmt: skip
            else:
                flat = [p for row in result["probabilities"] for p in row]
                outputs.append(
                    {"name": name, "shape": [rows, len(self.classes)], "datatype": "FP64",
                     "data": flat}
                )  # fmt: skip
        answer: dict[str, Any] = {"model_name": self.name, "model_version": self.version}
        if request.id is not None:
            answer["id"] = request.id
        answer["outputs"] = outputs
        return json.dumps(answer).encode()


def _flat(data: Any) -> list[Any]:
    """V2 data may be nested by the shape or flat; both are row-major."""
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(item, list) for item in data):
        return data
    flat: list[Any] = []
    for item in data:
        flat.extend(_flat(item))
    return flat
