"""The package digest: one hash over the model bytes and all metadata.

Name and version are left out on purpose: they label a package, they are not its
content, so the same model packaged twice under two versions is recognisably the same
(and the operator never builds the same digest twice). The JSON is canonical (sorted
keys, no whitespace) so the digest does not depend on field order.
"""

from __future__ import annotations

import hashlib
import json

from pitstop.packaging import lineage, profile, signature

PREFIX = "sha256:"


def compute(
    content_sha256: str,
    signature_: signature.Signature,
    profile_: profile.DataProfile,
    data: lineage.DataVersion,
    training: lineage.TrainingInfo,
) -> str:
    content = {
        "content_sha256": content_sha256,
        "signature": signature_.model_dump(mode="json"),
        "profile": profile_.model_dump(mode="json"),
        "data": data.model_dump(mode="json"),
        "training": training.model_dump(mode="json"),
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return PREFIX + hashlib.sha256(canonical.encode()).hexdigest()
