"""The cluster deployment: Kubernetes manifests schema-checked (Kubernetes' own JSON schemas,
strict, and a KEDA ScaledObject schema), the Envoy balancer's settings, the Dockerfile linted
(no docker engine here: it is parsed, not built), and the libtorch merge of the repository."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from exatrkx.serve.deploy import (
    BASE_IMAGE,
    Manifest,
    check_deploy,
    check_envoy,
    lint_dockerfile,
    merge_libtorch_models,
    render_manifests,
    validate_manifests,
)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCHEMAS = DEPLOY / "schemas"


@pytest.fixture(scope="module")
def manifests() -> list[Manifest]:
    return render_manifests(DEPLOY / "k8s")


def _doc(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    return next(m for m in manifests if m.doc["kind"] == kind
                and m.doc["metadata"]["name"] == name)


def _with(manifests: list[Manifest], target: Manifest, doc: dict) -> list[Manifest]:
    return [Manifest(m.path, doc) if m is target else m for m in manifests]


def test_the_shipped_deploy_folder_passes_every_check() -> None:
    assert check_deploy(DEPLOY) == []


def test_manifests_hold_the_expected_objects(manifests: list[Manifest]) -> None:
    kinds = sorted(f"{m.doc['kind']}/{m.doc['metadata']['name']}" for m in manifests)
    assert kinds == ["ConfigMap/exatrkx-envoy", "ConfigMap/exatrkx-jwks",
                     "Deployment/exatrkx-envoy", "Deployment/exatrkx-triton",
                     "Namespace/exatrkx", "NetworkPolicy/exatrkx-triton",
                     "ScaledObject/exatrkx-triton", "Service/exatrkx-envoy",
                     "Service/exatrkx-triton-headless"]
    triton = _doc(manifests, "Deployment", "exatrkx-triton").doc
    container = triton["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    trigger = _doc(manifests, "ScaledObject", "exatrkx-triton").doc["spec"]["triggers"][0]
    assert trigger["type"] == "prometheus"
    assert "nv_inference_queue_duration_us" in trigger["metadata"]["query"]
    assert "nv_inference_exec_count" in trigger["metadata"]["query"]


@pytest.mark.parametrize(("kind", "name", "edit", "expect"), [
    ("Deployment", "exatrkx-triton",
     lambda d: d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]
     .update(paht="/x"), "paht"),
    ("Service", "exatrkx-envoy", lambda d: d["spec"]["ports"][0].update(port="grpc"),
     "not of type"),
    ("Service", "exatrkx-envoy", lambda d: d["spec"].update(selector={"app": "nobody"}),
     "matches no Deployment"),
    ("Service", "exatrkx-triton-headless",
     lambda d: d["spec"]["ports"][0].update(targetPort="htp"), "no container port"),
    ("ScaledObject", "exatrkx-triton",
     lambda d: d["spec"]["triggers"][0]["metadata"].pop("query"), "'query' is a required"),
    ("ScaledObject", "exatrkx-triton",
     lambda d: d["spec"]["triggers"][0]["metadata"].update(threshold=5000), "not of type"),
    ("ScaledObject", "exatrkx-triton",
     lambda d: d["spec"]["scaleTargetRef"].update(name="elsewhere"), "scale target"),
    ("Deployment", "exatrkx-envoy",
     lambda d: d["spec"]["template"]["spec"]["volumes"][0]["configMap"].update(name="gone"),
     "ConfigMap gone"),
    ("Deployment", "exatrkx-envoy",
     lambda d: d["spec"]["template"]["spec"]["volumes"][1]["secret"].update(secretName="x"),
     "Secret x is neither defined"),
    ("NetworkPolicy", "exatrkx-triton",
     lambda d: d["spec"]["podSelector"].update(matchLabels={"app": "nobody"}),
     "matches no Deployment"),
    ("NetworkPolicy", "exatrkx-triton",
     lambda d: d["spec"]["ingress"][0]["ports"][0].update(proto="TCP"), "proto"),
])
def test_broken_manifests_are_caught(manifests: list[Manifest], kind: str, name: str,
                                     edit: object, expect: str) -> None:
    target = _doc(manifests, kind, name)
    doc = copy.deepcopy(target.doc)
    edit(doc)  # type: ignore[operator]
    errors = validate_manifests(_with(manifests, target, doc), SCHEMAS)
    assert any(expect in e for e in errors), errors


def test_unknown_kinds_have_no_schema(manifests: list[Manifest]) -> None:
    odd = Manifest(Path("x.yaml"), {"apiVersion": "example.com/v1", "kind": "Widget",
                                    "metadata": {"name": "w"}})
    assert any("no schema" in e for e in validate_manifests([*manifests, odd], SCHEMAS))


def test_envoy_balances_by_least_request_over_http2(manifests: list[Manifest]) -> None:
    cm = _doc(manifests, "ConfigMap", "exatrkx-envoy").doc
    envoy = yaml.safe_load(cm["data"]["envoy.yaml"])
    assert check_envoy(envoy, "exatrkx-triton-headless") == []
    bad = copy.deepcopy(envoy)
    cluster = bad["static_resources"]["clusters"][0]
    cluster["lb_policy"] = "ROUND_ROBIN"
    del cluster["health_checks"]
    del cluster["typed_extension_protocol_options"]
    errors = check_envoy(bad, "exatrkx-triton-headless")
    assert len(errors) == 3, errors
    port = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert port["health_check_config"]["port_value"] == 8000  # Triton's HTTP port


def _listener(envoy: dict, name: str) -> dict:
    return next(x for x in envoy["static_resources"]["listeners"] if x["name"] == name)


def _hcm(listener: dict) -> dict:
    return listener["filter_chains"][0]["filters"][0]["typed_config"]


@pytest.mark.parametrize(("listener", "edit", "expect"), [
    ("triton_grpc_listener", lambda x: x["filter_chains"][0].pop("transport_socket"),
     "does not terminate TLS"),
    ("triton_https_listener", lambda x: x["filter_chains"][0].pop("transport_socket"),
     "does not terminate TLS"),
    ("triton_grpc_listener", lambda x: _hcm(x)["http_filters"].pop(0), "no local rate limit"),
    ("triton_https_listener", lambda x: _hcm(x)["http_filters"].pop(1), "checks no JWT"),
    ("triton_grpc_listener",
     lambda x: _hcm(x)["http_filters"][1]["typed_config"]["rules"].clear(),
     "inference needs no JWT"),
    ("triton_https_listener",
     lambda x: _hcm(x)["http_filters"][1]["typed_config"]["rules"].insert(
         0, {"match": {"prefix": "/"}, "requires": {"provider_name": "exatrkx"}}),
     "health checks need a JWT"),
    ("triton_grpc_listener",
     lambda x: _hcm(x)["route_config"]["virtual_hosts"][0]["routes"].pop(0),
     "routes the control API /inference.GRPCInferenceService/RepositoryModelLoad"),
    ("triton_https_listener",
     lambda x: _hcm(x)["route_config"]["virtual_hosts"][0]["routes"].pop(0),
     "routes the control API /v2/repository/index"),
    ("triton_https_listener",
     lambda x: _hcm(x)["route_config"]["virtual_hosts"][0]["routes"].pop(2),
     "lets JSON inference reach Triton"),
    ("triton_https_listener",
     lambda x: _hcm(x)["route_config"]["virtual_hosts"][0]["routes"][1]["match"]["headers"]
     [0].update(range_match={"start": 1, "end": 1 << 30}),
     "lets a JSON header over 64 KiB reach Triton"),
    ("triton_https_listener", lambda x: _hcm(x)["http_filters"].reverse(),
     "the router is not the last filter"),
])
def test_proxy_terminates_tls_checks_tokens_and_limits_rates(
        manifests: list[Manifest], listener: str, edit: object, expect: str) -> None:
    cm = _doc(manifests, "ConfigMap", "exatrkx-envoy").doc
    envoy = yaml.safe_load(cm["data"]["envoy.yaml"])
    edit(_listener(envoy, listener))  # type: ignore[operator]
    errors = check_envoy(envoy, "exatrkx-triton-headless")
    assert any(expect in e for e in errors), errors


def test_proxy_admin_and_files(manifests: list[Manifest]) -> None:
    cm = _doc(manifests, "ConfigMap", "exatrkx-envoy").doc
    envoy = yaml.safe_load(cm["data"]["envoy.yaml"])
    envoy["admin"]["address"]["socket_address"]["address"] = "0.0.0.0"
    assert check_envoy(envoy, "exatrkx-triton-headless") == [
        "the admin interface listens beyond loopback"]
    proxy = _doc(manifests, "Deployment", "exatrkx-envoy")
    doc = copy.deepcopy(proxy.doc)
    doc["spec"]["template"]["spec"]["containers"][0]["volumeMounts"].pop(1)  # the TLS files
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        import shutil

        shutil.copytree(DEPLOY, Path(tmp) / "deploy")
        path = Path(tmp) / "deploy" / "k8s" / "envoy-deployment.yaml"
        path.write_text(yaml.safe_dump(doc))
        errors = check_deploy(Path(tmp) / "deploy", DEPLOY.parent)
    assert any("/etc/envoy/tls/tls.crt is on no volume" in e for e in errors), errors


def test_dockerfile_lints_clean_and_catches_mistakes(tmp_path: Path) -> None:
    assert lint_dockerfile(DEPLOY / "Dockerfile", ROOT) == []
    text = (DEPLOY / "Dockerfile").read_text()
    assert f"FROM {BASE_IMAGE}" in text
    bad = tmp_path / "Dockerfile"
    bad.write_text(text.replace(BASE_IMAGE, "python:3.11")
                   .replace("COPY src ./src", "COPY srcx ./src")
                   .replace('CMD ["--model', 'CMD ["--model",'))
    errors = lint_dockerfile(bad, ROOT)
    assert len(errors) == 3, errors


def test_libtorch_nets_join_the_repository_under_their_own_names(tmp_path: Path) -> None:
    from exatrkx.serve.repository import (
        RepositoryConfig,
        parse_config,
        repository_models,
        write_libtorch_variant,
    )

    dummy = tmp_path / "net.pt"
    dummy.write_bytes(b"torchscript")
    variant = write_libtorch_variant(tmp_path / "variant",
                                     dict.fromkeys(("embed", "filter", "gnn"), dummy), 8,
                                     RepositoryConfig())
    repo = tmp_path / "repo"
    (repo / "embed").mkdir(parents=True)  # the Python-backend model stays as it is
    added = merge_libtorch_models(repo, variant)
    assert added == ["embed_libtorch", "filter_libtorch", "gnn_libtorch"]
    assert repository_models(repo) == ["embed_libtorch", "filter_libtorch", "gnn_libtorch"]
    cfg = parse_config(repo / "gnn_libtorch" / "config.pbtxt")
    assert cfg.name == "gnn_libtorch" and cfg.platform == "pytorch_libtorch"
    assert (repo / "gnn_libtorch" / "1" / "model.pt").read_bytes() == b"torchscript"
    shutil.rmtree(repo)
