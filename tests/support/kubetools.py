"""kustomize and kubeconform for the manifests' offline validation, built once with Go.

Both are Go programs; like vegeta (support/vegeta.py) each is built from the Go module proxy
at a pinned version into .local/tools, so `make test` needs nothing installed by hand and
two machines validate with the same tools. kubeconform is pointed only at the schemas kept
in deploy/k8s/schemas: it never downloads one, so the result does not depend on the network.
"""

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
SCHEMAS = K8S / "schemas"

KUSTOMIZE_VERSION = "v5.8.1"
KUBECONFORM_VERSION = "v0.7.0"
_MODULES = {
    "kustomize": ("sigs.k8s.io/kustomize/kustomize/v5", KUSTOMIZE_VERSION),
    "kubeconform": ("github.com/yannh/kubeconform/cmd/kubeconform", KUBECONFORM_VERSION),
}


# kubeconform's templates for a schema's file name.
_KIND, _GROUP, _VERSION = "{{.ResourceKind}}", "{{.Group}}", "{{.ResourceAPIVersion}}"


def tool(name: str) -> Path:
    """The binary of `name` (kustomize or kubeconform); the first call builds it."""
    module, version = _MODULES[name]
    binary = REPO / ".local" / "tools" / f"{name}-{version}" / name
    if binary.exists():
        return binary
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if go is None:
        raise RuntimeError(f"the manifests' tests build {name} with Go, and `go` is not on PATH")
    binary.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [go, "install", f"{module}@{version}"],
        env={**os.environ, "GOBIN": str(binary.parent)}, check=True, capture_output=True,
    )  # fmt: skip
    return binary


def build(overlay: str) -> str:
    """`kustomize build` of deploy/k8s/overlays/<overlay>: the YAML `kubectl apply -k` sends."""
    done = subprocess.run(
        [str(tool("kustomize")), "build", str(K8S / "overlays" / overlay)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return done.stdout


def validate(manifests: str) -> subprocess.CompletedProcess[str]:
    """kubeconform, strict (unknown fields refused), against the kept schemas only: the
    Kubernetes kinds by kind and version, the CRDs (KEDA, Strimzi, CloudNativePG) by group."""
    return subprocess.run(
        [
            str(tool("kubeconform")), "-strict", "-summary", "-output", "text",
            "-schema-location", f"{SCHEMAS}/kubernetes/{_KIND}{{{{.KindSuffix}}}}.json",
            "-schema-location", f"{SCHEMAS}/crds/{_GROUP}/{_KIND}_{_VERSION}.json",
            "-",
        ],
        input=manifests, capture_output=True, text=True, check=False,
    )  # fmt: skip
