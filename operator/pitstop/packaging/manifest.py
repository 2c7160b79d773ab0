"""The manifest: everything a package says about itself, stored beside the model.

It is the single document the serving template, the image build and the operator
read; `digest` identifies the package's content (see `digest.py`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from pitstop.packaging import lineage, profile, signature

FILENAME = "pitstop-manifest.json"
MODEL_FILENAME = "model.joblib"


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[1] = 1
    name: str
    version: str
    digest: str
    model_file: str = MODEL_FILENAME
    # The stored file's hash (integrity) and the estimator's content hash (identity,
    # the one the digest covers; see package.content_sha256).
    model_sha256: str
    content_sha256: str
    signature: signature.Signature
    profile: profile.DataProfile
    data: lineage.DataVersion
    training: lineage.TrainingInfo
    # Whether one call may predict rows of several requests (the serving template's
    # micro-batching). False for a model whose answer for a row depends on the other
    # rows of the call (e.g. one that normalises over its input).
    batchable: bool = True
    # The user's own modules the model refers to, pickled by value into the model file
    # (see code.py): the image needs nothing of theirs installed.
    code: tuple[str, ...] = ()

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"
