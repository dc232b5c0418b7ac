"""Cluster deployment helpers: the container's model repository and checks of ``deploy/``.

- :func:`write_container_repository` writes the repository the container image serves and,
  when the image has Triton's libtorch backend, adds the three nets as ``pytorch_libtorch``
  models (``<net>_libtorch``) beside the Python-backend ones (one repository, no name clash);
- :func:`render_manifests` reads ``deploy/k8s`` in its kustomization order;
- :func:`validate_manifests` checks each manifest against the Kubernetes JSON schemas
  (``kubernetes-validate``, strict: unknown fields are errors) or a schema of our own for
  custom resources (KEDA's ScaledObject), plus the cross references between them;
- :func:`check_envoy` checks the Envoy load balancer's settings;
- :func:`lint_dockerfile` parses ``deploy/Dockerfile`` (no docker engine needed).

Command line (used by the Dockerfile)::

    python -m exatrkx.serve.deploy repository /models --device cuda --libtorch-if /opt/.../pytorch
    python -m exatrkx.serve.deploy check deploy
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exatrkx.contract import DEFAULT_MAX_HITS
from exatrkx.serve.repository import (
    Device,
    RepositoryConfig,
    config_text,
    parse_config,
    repository_models,
    write_repository,
)

#: The base image: NGC Triton release 24.10 is Triton 2.51, as the wheel's server.
BASE_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"
#: Kubernetes version the manifests are validated for.
K8S_VERSION = "1.30.0"
#: Suffix of the libtorch nets in the merged repository.
LIBTORCH_SUFFIX = "_libtorch"
#: Custom resources -> schema file name in ``deploy/schemas``.
CRD_SCHEMAS: dict[tuple[str, str], str] = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda-scaledobject.schema.json",
}
#: Secrets the manifests use but do not hold (created at install: see deploy/README.md).
EXTERNAL_SECRETS = ("exatrkx-envoy-tls", "exatrkx-api-key")
#: Triton's health endpoints.
READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"


# ---------------------------------------------------------------------------- repository

def merge_libtorch_models(repository: str | Path, variant: str | Path,
                          suffix: str = LIBTORCH_SUFFIX) -> list[str]:
    """Copy the libtorch variant's models into ``repository`` as ``<name><suffix>``.

    Returns:
        The names of the models added.
    """
    repo, src = Path(repository), Path(variant)
    added = []
    for cfg_path in sorted(src.glob("*/config.pbtxt")):
        cfg = parse_config(cfg_path)
        name = f"{cfg.name}{suffix}"
        cfg.name = name
        dest = repo / name
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(cfg_path.parent, dest)
        (dest / "config.pbtxt").write_text(config_text(cfg))
        added.append(name)
    return added


def write_container_repository(directory: str | Path, *, weights_dir: str | Path | None = None,
                               device: Device = "cuda", instances: int = 1,
                               max_hits: int = DEFAULT_MAX_HITS,
                               libtorch_backend: str | Path | None = None) -> list[str]:
    """Write the repository a container serves; returns its model names.

    Args:
        directory: the repository folder (``/models`` in the image).
        weights_dir: trained weights (None: the shipped ones).
        device: ``"cuda"`` or ``"cpu"`` (instance kind of the models).
        instances: instances per model.
        max_hits: events with more hits are refused.
        libtorch_backend: the image's libtorch backend folder; when it exists the nets are
            added as ``<net>_libtorch`` models.
    """
    with_libtorch = libtorch_backend is not None and Path(libtorch_backend).is_dir()
    settings = RepositoryConfig(instances=instances, max_hits=max_hits, device=device,
                                libtorch_variant=with_libtorch)
    with tempfile.TemporaryDirectory(prefix="exatrkx-libtorch-") as scratch:
        variant = Path(scratch) / "libtorch"
        repo = write_repository(directory, weights_dir, settings, libtorch_dir=variant)
        if with_libtorch:
            merge_libtorch_models(repo, variant)
    return repository_models(repo)


# ---------------------------------------------------------------------------- manifests

@dataclass(frozen=True)
class Manifest:
    """One Kubernetes object of a manifest file."""

    path: Path
    doc: dict[str, Any]

    @property
    def key(self) -> str:
        meta = self.doc.get("metadata", {})
        return f"{self.doc.get('kind')}/{meta.get('name')} ({self.path.name})"


def render_manifests(folder: str | Path) -> list[Manifest]:
    """Every object of the files listed by ``kustomization.yaml`` (in its order), or of every
    ``*.yaml`` file when there is none."""
    import yaml  # the checking tools are test extras, not runtime dependencies

    root = Path(folder)
    kust = root / "kustomization.yaml"
    if kust.exists():
        files = [root / name for name in yaml.safe_load(kust.read_text())["resources"]]
    else:
        files = sorted(root.glob("*.yaml"))
    out = []
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out.append(Manifest(path, doc))
    return out


def _schema_errors(doc: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.path))]


def validate_manifests(manifests: Sequence[Manifest], schemas_dir: str | Path,
                       k8s_version: str = K8S_VERSION) -> list[str]:
    """Schema errors and broken cross references of the manifests (empty: all good).

    Built-in kinds are checked against Kubernetes' own JSON schemas (strict), custom
    resources against ``schemas_dir`` (see :data:`CRD_SCHEMAS`); a kind with neither is an
    error.
    """
    import kubernetes_validate

    errors = []
    for m in manifests:
        crd = CRD_SCHEMAS.get((m.doc.get("apiVersion", ""), m.doc.get("kind", "")))
        if crd is not None:
            schema = json.loads((Path(schemas_dir) / crd).read_text())
            errors += [f"{m.key}: {e}" for e in _schema_errors(m.doc, schema)]
            continue
        try:
            kubernetes_validate.validate(m.doc, k8s_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            first = str(exc).splitlines()[0]
            errors.append(f"{m.key}: {first}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{m.key}: no schema for {m.doc.get('apiVersion')} "
                          f"{m.doc.get('kind')}")
    return errors + cross_references(manifests)


def _find(manifests: Sequence[Manifest], kind: str, name: str) -> dict[str, Any] | None:
    for m in manifests:
        if m.doc.get("kind") == kind and m.doc.get("metadata", {}).get("name") == name:
            return m.doc
    return None


def _pod_labels(deployment: Mapping[str, Any]) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"].get("labels", {}))


def cross_references(manifests: Sequence[Manifest]) -> list[str]:
    """Services select pods that exist and name ports they expose; ConfigMaps, scale targets
    and namespaces that are referenced exist; Triton's probes use its health endpoints."""
    errors = []
    namespaces = {m.doc["metadata"]["name"] for m in manifests if m.doc.get("kind") == "Namespace"}
    deployments = [m.doc for m in manifests if m.doc.get("kind") == "Deployment"]
    for m in manifests:
        ns = m.doc.get("metadata", {}).get("namespace")
        if ns and namespaces and ns not in namespaces:
            errors.append(f"{m.key}: namespace {ns} is not defined")
    for m in manifests:
        doc = m.doc
        if doc.get("kind") == "Service":
            sel = doc["spec"].get("selector", {})
            pods = [d for d in deployments if sel and sel.items() <= _pod_labels(d).items()]
            if not pods:
                errors.append(f"{m.key}: selector {sel} matches no Deployment's pods")
            ports = {p.get("name") for d in pods
                     for c in d["spec"]["template"]["spec"]["containers"]
                     for p in c.get("ports", [])}
            for port in doc["spec"].get("ports", []):
                target = port.get("targetPort")
                if isinstance(target, str) and target not in ports:
                    errors.append(f"{m.key}: targetPort {target} is no container port")
        elif doc.get("kind") == "Deployment":
            spec = doc["spec"]
            if not spec["selector"]["matchLabels"].items() <= _pod_labels(doc).items():
                errors.append(f"{m.key}: selector does not match the pod labels")
            pod = spec["template"]["spec"]
            secrets = [vol["secret"]["secretName"] for vol in pod.get("volumes", [])
                       if "secret" in vol]
            secrets += [env["valueFrom"]["secretKeyRef"]["name"]
                        for c in pod["containers"] for env in c.get("env", [])
                        if "secretKeyRef" in env.get("valueFrom", {})]
            for secret in secrets:
                if secret not in EXTERNAL_SECRETS and _find(manifests, "Secret", secret) is None:
                    errors.append(f"{m.key}: Secret {secret} is neither defined nor one of "
                                  f"the install-time secrets {', '.join(EXTERNAL_SECRETS)}")
            for vol in pod.get("volumes", []):
                cm = vol.get("configMap", {}).get("name")
                if cm and _find(manifests, "ConfigMap", cm) is None:
                    errors.append(f"{m.key}: ConfigMap {cm} is not defined")
        elif doc.get("kind") == "NetworkPolicy":
            sel = doc["spec"]["podSelector"].get("matchLabels", {})
            if not any(sel.items() <= _pod_labels(d).items() for d in deployments):
                errors.append(f"{m.key}: podSelector {sel} matches no Deployment's pods")
        elif doc.get("kind") == "ScaledObject":
            ref = doc["spec"]["scaleTargetRef"]
            if _find(manifests, ref.get("kind", "Deployment"), ref["name"]) is None:
                errors.append(f"{m.key}: scale target {ref['name']} is not defined")
    return errors


def triton_probes(deployment: Mapping[str, Any]) -> dict[str, str]:
    """``{probe: path}`` of the Triton container's HTTP probes."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {key: container[key]["httpGet"]["path"]
            for key in ("startupProbe", "readinessProbe", "livenessProbe")
            if "httpGet" in container.get(key, {})}


#: gRPC methods of inference (a JWT is required on them).
GRPC_INFER_METHODS = ("/inference.GRPCInferenceService/ModelInfer",
                      "/inference.GRPCInferenceService/ModelStreamInfer")
#: Paths of Triton's control APIs that the proxy must not route (one example per API).
CONTROL_PATHS = {
    "grpc": ("/inference.GRPCInferenceService/RepositoryModelLoad",
             "/inference.GRPCInferenceService/RepositoryIndex",
             "/inference.GRPCInferenceService/SystemSharedMemoryRegister",
             "/inference.GRPCInferenceService/ModelStatistics",
             "/inference.GRPCInferenceService/LogSettings",
             "/inference.GRPCInferenceService/TraceSetting"),
    "http": ("/v2/repository/index", "/v2/repository/models/exatrkx/load",
             "/v2/systemsharedmemory/region/x/register", "/v2/models/exatrkx/stats",
             "/v2/logging", "/v2/trace/setting"),
}
#: An inference path of each protocol.
INFER_PATHS = {"grpc": GRPC_INFER_METHODS[0], "http": "/v2/models/exatrkx/infer"}
_TLS_SOCKET = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"


def _type(config: Mapping[str, Any]) -> str:
    return str(config.get("typed_config", {}).get("@type", "")).rsplit("/", 1)[-1]


def _route_for(routes: Sequence[Mapping[str, Any]], path: str,
               headers: Mapping[str, str] | None = None) -> Mapping[str, Any] | None:
    """The first route whose prefix, path or regex (and header ranges) match ``path``."""
    import re

    for route in routes:
        match = route.get("match", {})
        if "prefix" in match:
            hit = path.startswith(match["prefix"])
        elif "path" in match:
            hit = path == match["path"]
        elif "safe_regex" in match:
            hit = re.fullmatch(match["safe_regex"]["regex"], path) is not None
        else:
            hit = False
        for rule in match.get("headers", []):
            value = (headers or {}).get(rule["name"])
            bounds = rule.get("range_match")
            if value is None or (bounds and not bounds["start"] <= int(value) < bounds["end"]):
                hit = False
        if hit:
            return route
    return None


def _jwt_required(jwt: Mapping[str, Any], path: str) -> bool:
    import re

    for rule in jwt.get("rules", []):
        match = rule.get("match", {})
        hit = (path.startswith(match["prefix"]) if "prefix" in match
               else re.fullmatch(match["safe_regex"]["regex"], path) is not None
               if "safe_regex" in match else False)
        if hit:
            return bool(rule.get("requires"))
    return False


def check_listener(listener: Mapping[str, Any], protocol: str,
                   clusters: Sequence[str]) -> list[str]:
    """A listener of the proxy: TLS terminated, a JWT required on inference, a local rate
    limit, control APIs not routed, the rest routed to a Triton cluster."""
    name = listener.get("name")
    errors = []
    for chain in listener.get("filter_chains", []):
        tls = chain.get("transport_socket", {})
        certs = tls.get("typed_config", {}).get("common_tls_context", {}).get(
            "tls_certificates", [])
        if not _type(tls) == _TLS_SOCKET or not certs:
            errors.append(f"listener {name} does not terminate TLS")
        for flt in chain.get("filters", []):
            hcm = flt.get("typed_config", {})
            codec = hcm.get("codec_type")
            if protocol == "grpc" and codec not in ("HTTP2", "AUTO"):
                errors.append(f"listener {name} does not speak HTTP/2")
            filters = {_type(f): f.get("typed_config", {}) for f in hcm.get("http_filters", [])}
            order = [_type(f) for f in hcm.get("http_filters", [])]
            if not order or not order[-1].endswith("Router"):
                errors.append(f"listener {name}: the router is not the last filter")
            limit = filters.get("envoy.extensions.filters.http.local_ratelimit.v3."
                                "LocalRateLimit")
            bucket = (limit or {}).get("token_bucket", {})
            if not limit or not bucket.get("max_tokens", 0) > 0:
                errors.append(f"listener {name} has no local rate limit")
            jwt = filters.get("envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication")
            if jwt is None or not jwt.get("providers"):
                errors.append(f"listener {name} checks no JWT")
            elif not _jwt_required(jwt, INFER_PATHS[protocol]):
                errors.append(f"listener {name}: inference needs no JWT")
            elif _jwt_required(jwt, "/v2/health/ready"):
                errors.append(f"listener {name}: health checks need a JWT")
            routes = [r for vh in hcm.get("route_config", {}).get("virtual_hosts", [])
                      for r in vh.get("routes", [])]
            for path in CONTROL_PATHS[protocol]:
                route = _route_for(routes, path)
                if route is None or "direct_response" not in route:
                    errors.append(f"listener {name} routes the control API {path}")
            headers = {"inference-header-content-length": "200"} if protocol == "http" else {}
            infer = _route_for(routes, INFER_PATHS[protocol], headers)
            if infer is None or infer.get("route", {}).get("cluster") not in clusters:
                errors.append(f"listener {name} routes inference to no Triton cluster")
            if protocol == "http":
                json_only = _route_for(routes, INFER_PATHS["http"])
                big_header = _route_for(routes, INFER_PATHS["http"],
                                        {"inference-header-content-length": str(1 << 20)})
                for label, route in (("JSON inference", json_only),
                                     ("a JSON header over 64 KiB", big_header)):
                    if route is None or "direct_response" not in route:
                        errors.append(f"listener {name} lets {label} reach Triton")
    return errors


def _files_of(node: Any) -> list[str]:
    """Every ``filename`` in an Envoy configuration (certificates, keys, JWKS)."""
    if isinstance(node, Mapping):
        own = [str(node["filename"])] if isinstance(node.get("filename"), str) else []
        return own + [f for v in node.values() for f in _files_of(v)]
    if isinstance(node, list):
        return [f for v in node for f in _files_of(v)]
    return []


def check_envoy(config: Mapping[str, Any], triton_service: str) -> list[str]:
    """Settings the proxy needs (empty: all good).

    The Triton clusters balance by least request, resolve every pod of the headless
    ``triton_service`` and health-check Triton's readiness endpoint, the gRPC one over
    HTTP/2; the admin interface listens on loopback only; the gRPC listener and the HTTPS
    listener each pass :func:`check_listener`.
    """
    errors = []
    clusters = {c.get("name"): c for c in
                config.get("static_resources", {}).get("clusters", [])}
    listeners = config.get("static_resources", {}).get("listeners", [])
    if "triton_grpc" not in clusters or "triton_http" not in clusters:
        return ["expected the clusters triton_grpc and triton_http"]
    admin = config.get("admin", {}).get("address", {}).get("socket_address", {})
    if admin and admin.get("address") not in ("127.0.0.1", "::1"):
        errors.append("the admin interface listens beyond loopback")
    for name, c in clusters.items():
        if c.get("lb_policy") != "LEAST_REQUEST":
            errors.append(f"{name}: lb_policy is {c.get('lb_policy')}, not LEAST_REQUEST")
        if c.get("type") != "STRICT_DNS":
            errors.append(f"{name}: the cluster must be STRICT_DNS (one host per pod of the "
                          "headless service)")
        checks = [h.get("http_health_check", {}).get("path") for h in c.get("health_checks", [])]
        if READY_PATH not in checks:
            errors.append(f"{name}: no active health check on {READY_PATH}")
        hosts = [e["endpoint"]["address"]["socket_address"]["address"]
                 for group in c["load_assignment"]["endpoints"] for e in group["lb_endpoints"]]
        if not all(h.split(".")[0] == triton_service for h in hosts):
            errors.append(f"{name}: endpoints {hosts} are not the service {triton_service}")
    opts = clusters["triton_grpc"].get("typed_extension_protocol_options", {}).get(
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions", {})
    if "http2_protocol_options" not in opts.get("explicit_http_config", {}):
        errors.append("the gRPC upstream is not HTTP/2 (gRPC needs it)")
    by_name = {lst.get("name"): lst for lst in listeners}
    for name, protocol in (("triton_grpc_listener", "grpc"), ("triton_https_listener", "http")):
        if name not in by_name:
            errors.append(f"no listener {name}")
            continue
        errors += check_listener(by_name[name], protocol, [f"triton_{protocol}"])
    return errors


# ---------------------------------------------------------------------------- Dockerfile

def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` per instruction: comments dropped, continuations joined."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    if current.strip():
        word, _, rest = current.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


_KNOWN = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
          "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}


def lint_dockerfile(path: str | Path, context: str | Path,
                    base_image: str = BASE_IMAGE) -> list[str]:
    """Problems of a Dockerfile that can be seen without building it (empty: none).

    Checks: known instructions; the first ``FROM`` is ``base_image``; every ``COPY``/``ADD``
    source exists in the build context; exec-form ``CMD``/``ENTRYPOINT`` are JSON arrays;
    ``EXPOSE`` names Triton's three ports.
    """
    errors = []
    steps = dockerfile_instructions(Path(path).read_text())
    for word, _ in steps:
        if word not in _KNOWN:
            errors.append(f"unknown instruction {word}")
    froms = [args for word, args in steps if word == "FROM"]
    if not froms or froms[0].split()[0] != base_image:
        errors.append(f"the base image is {froms[0] if froms else None}, not {base_image}")
    for word, args in steps:
        if word in ("COPY", "ADD"):
            parts = [p for p in args.split() if not p.startswith("--")]
            for src in parts[:-1]:
                if not list(Path(context).glob(src)):
                    errors.append(f"{word} source {src} is not in the build context")
        if word in ("CMD", "ENTRYPOINT") and args.startswith("["):
            try:
                value = json.loads(args)
            except json.JSONDecodeError as exc:
                errors.append(f"{word} is not a JSON array: {exc}")
                continue
            if not all(isinstance(v, str) for v in value):
                errors.append(f"{word} holds non-strings")
    exposed = {p for word, args in steps if word == "EXPOSE" for p in args.split()}
    if not {"8000", "8001", "8002"} <= exposed:
        errors.append(f"EXPOSE {sorted(exposed)} lacks one of 8000, 8001, 8002")
    return errors


def check_deploy(deploy_dir: str | Path, context: str | Path | None = None) -> list[str]:
    """Every check of a ``deploy/`` folder: Dockerfile, manifests, Envoy, probes."""
    import yaml

    root = Path(deploy_dir)
    errors = lint_dockerfile(root / "Dockerfile", context or root.parent)
    manifests = render_manifests(root / "k8s")
    errors += validate_manifests(manifests, root / "schemas")
    proxy = _find(manifests, "Deployment", "exatrkx-envoy")
    mounts = [v["mountPath"] for c in (proxy or {}).get("spec", {}).get("template", {}).get(
        "spec", {}).get("containers", []) for v in c.get("volumeMounts", [])]
    for m in manifests:
        if m.doc.get("kind") == "ConfigMap" and "envoy.yaml" in m.doc.get("data", {}):
            envoy = yaml.safe_load(m.doc["data"]["envoy.yaml"])
            errors += [f"envoy: {e}" for e in check_envoy(envoy, "exatrkx-triton-headless")]
            for path in _files_of(envoy):
                if not any(path.startswith(mount.rstrip("/") + "/") for mount in mounts):
                    errors.append(f"envoy: {path} is on no volume of the proxy's pod")
    triton = _find(manifests, "Deployment", "exatrkx-triton")
    if triton is None:
        errors.append("no Deployment exatrkx-triton")
    else:
        probes = triton_probes(triton)
        if probes.get("readinessProbe") != READY_PATH or probes.get("livenessProbe") != LIVE_PATH:
            errors.append(f"Triton probes {probes}: want readiness {READY_PATH}, "
                          f"liveness {LIVE_PATH}")
    return errors


# ---------------------------------------------------------------------------- command line

def main(argv: Sequence[str] | None = None) -> int:
    """``repository DIR [...]`` or ``check DEPLOY_DIR``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m exatrkx.serve.deploy")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("repository", help="write the container's model repository")
    rep.add_argument("directory", type=Path)
    rep.add_argument("--weights", type=Path, default=None)
    rep.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    rep.add_argument("--instances", type=int, default=1)
    rep.add_argument("--max-hits", type=int, default=DEFAULT_MAX_HITS)
    rep.add_argument("--libtorch-if", type=Path, default=None,
                     help="add the libtorch nets when this backend folder exists")
    chk = sub.add_parser("check", help="lint the Dockerfile and validate the manifests")
    chk.add_argument("deploy_dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "repository":
        models = write_container_repository(
            args.directory, weights_dir=args.weights, device=args.device,
            instances=args.instances, max_hits=args.max_hits, libtorch_backend=args.libtorch_if)
        print(f"{args.directory}: {', '.join(models)}")
        return 0
    errors = check_deploy(args.deploy_dir)
    for line in errors:
        print(line)
    print("ok" if not errors else f"{len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__ = ["BASE_IMAGE", "Manifest", "check_deploy", "check_envoy", "cross_references",
           "lint_dockerfile", "main", "merge_libtorch_models", "render_manifests",
           "validate_manifests", "write_container_repository"]
