"""careops.router: the learner's router YAML is checked key by key, rendered to nginx.conf, and applied in a
real nginx container only after `nginx -t` passed -- a bad config is rejected and the old one keeps serving."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from careops.errors import LabError, RouterConfigError
from careops.images import ensure_images
from careops.lab import Lab
from careops.router import (DEFAULT_CONFIG, EXAMPLE, Backend, Router, RouterConfig, parse_router_config,
                            render_nginx)

REPO = Path(__file__).resolve().parent.parent


# -- the YAML (no engine) ----------------------------------------------------------

def test_example_parses_to_one_backend_per_protocol() -> None:
    cfg = parse_router_config(EXAMPLE)
    assert cfg == RouterConfig((Backend("my-backend", 8081, 100),), (Backend("my-backend", 2575, 100),))
    assert parse_router_config(cfg.to_yaml()) == cfg


def test_weights_give_shares() -> None:
    cfg = RouterConfig.weighted({"adt-blue": 95, "adt-green": 5})
    assert cfg.share("http") == {"adt-blue": 0.95, "adt-green": 0.05}
    assert "careops-table" in cfg._repr_html_() and ">95%</td>" in cfg._repr_html_()


@pytest.mark.parametrize("text, where, words", [
    ("http: [\n", "line", "not valid YAML"),
    ("http:\n  backends:\n    - {host: adt-blue, port: 8081}\n", "(top)", "no 'mllp' section"),
    (EXAMPLE.replace("port: 8081", "port: eighty"), "http.backends[0].port (line 3)", "port number"),
    (EXAMPLE.replace("weight: 100}\nmllp", "weight: 250}\nmllp"), "http.backends[0].weight (line 3)", "0..100"),
    (EXAMPLE.replace("host: my-backend, port: 2575", "host: ADT_Blue, port: 2575"), "mllp.backends[0].host (line 6)",
     "container name"),
    (EXAMPLE + "tcp:\n  backends: []\n", "tcp (line 7)", "unknown key 'tcp'"),
    ("http:\n  backends: []\nmllp:\n  backends: []\n", "http.backends (line 2)", "non-empty list"),
    (EXAMPLE.replace("weight: 100", "weight: 0"), "http.backends (line 2)", "weight 0"),
    ("http:\n  backends:\n    - {host: a, port: 1}\n    - {host: a, port: 1}\nmllp:\n  backends:\n    - {host: a, port: 2}\n",
     "http.backends[1] (line 4)", "listed twice"),
])
def test_bad_router_yaml_names_key_line_and_fix(text: str, where: str, words: str) -> None:
    with pytest.raises(RouterConfigError) as info:
        parse_router_config(text)
    assert where in info.value.message and words in info.value.message
    assert info.value.fix


def test_render_has_http_and_stream_upstreams_and_skips_weight_zero() -> None:
    conf = render_nginx(RouterConfig.weighted({"adt-blue": 100, "adt-green": 0}), generation=7)
    assert "server adt-blue:8081 weight=100" in conf and "server adt-blue:2575 weight=100" in conf
    assert "adt-green" not in conf
    assert "stream {" in conf and "generation 7" in conf


def test_image_default_config_is_the_rendered_default() -> None:
    """labs/router/nginx.conf is what render_nginx makes (regenerate it when the template changes)."""
    assert (REPO / "labs/router/nginx.conf").read_text() == render_nginx(DEFAULT_CONFIG)


# -- the real router -------------------------------------------------------------------

@pytest.mark.docker
def test_router_image_comes_from_the_debootstrapped_variant_and_is_kept() -> None:
    """nginx enters offline through careops/router-base (debootstrap + nginx); a second ensure builds nothing."""
    ensure_images(["router"], progress=False)
    again = {r.name: r for r in ensure_images(["router"], progress=False)}
    assert [n for n, r in again.items() if r.built] == []
    assert again["router-base"].source == "debootstrap" and again["router-base"].tag == "careops/router-base:bookworm"
    base = {r.name: r for r in ensure_images(["base"], progress=False)}["base"]
    assert again["router-base"].inputs_hash != base.inputs_hash  # its own recipe (the extra packages)
    assert again["router"].source == "Dockerfile in labs/router"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    ensure_images(["router"], progress=False)
    with Lab("router-test", learner="pytest") as lab:
        blue = lab.run("careops/legacy-adt:v2", name="adt-blue", volumes={"blue-data": "/data"})
        green = lab.run("careops/legacy-adt:v2-faulty", name="adt-green", volumes={"green-data": "/data"})
        for service in (blue, green):
            service.wait_until("healthy", timeout=30)
        yield lab



@pytest.mark.docker
def test_switch_changes_who_answers_and_bad_configs_are_rejected(lab: Lab) -> None:
    router = Router.start(lab, RouterConfig.single("adt-blue"))
    assert router.who_answers(5) == {"v2": 5}
    switched = router.apply(RouterConfig.single("adt-green"))
    assert switched.generation == 2 and router.serving_generation() == 2
    assert router.who_answers(5) == {"v2-faulty": 5}  # /health stays 200 on the faulty release
    router.apply(EXAMPLE.replace("my-backend", "adt-blue"))  # the YAML form, back to blue

    with pytest.raises(RouterConfigError) as info:  # a host no container has: nginx -t fails on resolution
        router.apply(RouterConfig.single("adt-missing"))
    assert "host not found" in info.value.message and "keeps serving generation 3" in info.value.message
    broken = RouterConfig(router.config.http, router.config.mllp, raw_http_directives=("proxy_pass_nonsense on;",))
    with pytest.raises(RouterConfigError, match="unknown directive"):  # a syntax error nginx -t finds
        router.apply(broken)
    with pytest.raises(RouterConfigError):
        router.validate(broken)
    assert router.serving_generation() == 3 and router.generation == 3
    assert router.who_answers(5) == {"v2": 5}
    assert "adt-blue:8081" in router.live_config() and "adt-missing" not in router.live_config()


@pytest.mark.docker
def test_a_killed_router_is_detected(lab: Lab) -> None:
    router = Router.start(lab, RouterConfig.single("adt-blue"), name="router-2")
    router.check_alive()
    router.container.kill()
    with pytest.raises(LabError, match="router is not running") as info:
        router.apply(RouterConfig.single("adt-green"))
    assert "careops labs reset" in (info.value.fix or "")
    with pytest.raises(LabError, match="router is not running"):
        router.who_answers(2)
