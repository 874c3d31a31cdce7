"""Regenerate the Kubernetes JSON schemas kept in deploy/k8s/schemas/kubernetes/.

kubeconform downloads its schemas from github.com/yannh/kubernetes-json-schema by default;
the test suite validates offline, so the few kinds the manifests use are kept in the
repository instead. They are made the way that repository makes its "-standalone-strict"
ones (openapi2jsonschema): from the OpenAPI v3 documents of one pinned Kubernetes release,
every $ref inlined and unknown fields refused. The OpenAPI documents come from the Go
module k8s.io/kubernetes (`go mod download`, the Go module proxy), so the source is a
pinned, checksummed release rather than a hand-copied file.

    uv run python tests/support/kubernetes_schemas.py
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

KUBERNETES_VERSION = "v1.31.4"
OUT = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "schemas" / "kubernetes"

# (OpenAPI document, schema name, apiVersion, kind): only the kinds the manifests use.
KINDS = (
    ("api__v1_openapi.json", "io.k8s.api.core.v1.ConfigMap", "v1", "ConfigMap"),
    ("api__v1_openapi.json", "io.k8s.api.core.v1.Service", "v1", "Service"),
    ("api__v1_openapi.json", "io.k8s.api.core.v1.ServiceAccount", "v1", "ServiceAccount"),
    ("apis__apps__v1_openapi.json", "io.k8s.api.apps.v1.Deployment", "apps/v1", "Deployment"),
    (
        "apis__policy__v1_openapi.json",
        "io.k8s.api.policy.v1.PodDisruptionBudget",
        "policy/v1",
        "PodDisruptionBudget",
    ),
    (
        "apis__networking.k8s.io__v1_openapi.json",
        "io.k8s.api.networking.v1.NetworkPolicy",
        "networking.k8s.io/v1",
        "NetworkPolicy",
    ),
    (
        "apis__autoscaling__v2_openapi.json",
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
    ),
)


def _openapi_dir() -> Path:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    out = subprocess.run(
        [go, "mod", "download", "-json", f"k8s.io/kubernetes@{KUBERNETES_VERSION}"],
        check=True, capture_output=True, env={**os.environ, "GOFLAGS": "-mod=mod"},
    )  # fmt: skip
    return Path(json.loads(out.stdout)["Dir"]) / "api" / "openapi-spec" / "v3"


def _inline(node: Any, schemas: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """The schema with every $ref replaced by its target, unknown properties refused."""
    if isinstance(node, list):
        return [_inline(item, schemas, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:  # a recursive type: accept anything below the second visit
            return {}
        return _inline(schemas[name], schemas, (*seen, name))
    if len(node.get("allOf", ())) == 1:  # OpenAPI v3's way to put a default beside a $ref
        merged = {k: v for k, v in node.items() if k != "allOf"}
        return _inline({**node["allOf"][0], **merged}, schemas, seen)
    out = {k: _inline(v, schemas, seen) for k, v in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    for key in [k for k in out if k.startswith("x-kubernetes-")]:
        del out[key]
    return out


def generate() -> None:
    """Write one `<kind>-<group>-<version>.json` per kind, as kubeconform names them."""
    source = _openapi_dir()
    OUT.mkdir(parents=True, exist_ok=True)
    for document, name, api_version, kind in KINDS:
        schemas = json.loads((source / document).read_text())["components"]["schemas"]
        schema = _inline(schemas[name], schemas, (name,))
        schema["properties"]["apiVersion"]["enum"] = [api_version]
        schema["properties"]["kind"]["enum"] = [kind]
        schema["$schema"] = "http://json-schema.org/schema#"
        group, _, version = api_version.rpartition("/")
        suffix = "-".join(part for part in (group.split(".")[0], version) if part)
        target = OUT / f"{kind.lower()}-{suffix}.json"
        target.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        print(target.relative_to(OUT.parents[3]), file=sys.stderr)


if __name__ == "__main__":
    generate()
