"""The course's images as ordered data: what each is built from and on.

A spec names the build context, the Dockerfile, the Python requirements that
enter the image from the wheelhouse, and the images it is built on. Order
matters: an image comes after the images it depends on, so ``select`` can
return a build plan by walking the list once.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from careops.errors import CareOpsError

BASE_IMAGE = "careops/base:bookworm"
LAB_IMAGE = "careops/lab-runtime:latest"
GRADER_IMAGE = "careops/grader:latest"
#: The case-study service's releases (how a lab runs them: careops.legacy_adt).
ADT_REPOSITORY = "careops/legacy-adt"
ADT_V1 = f"{ADT_REPOSITORY}:v1"
ADT_V2 = f"{ADT_REPOSITORY}:v2"
ADT_V2_FAULTY = f"{ADT_REPOSITORY}:v2-faulty"
CI_RUNNER_IMAGE = "careops/ci-runner:latest"
FHIR_FACADE_IMAGE = "careops/fhir-facade:latest"
ROUTER_REPOSITORY = "careops/router"
ROUTER_BASE_IMAGE = "careops/router-base:bookworm"
ROUTER_IMAGE = f"{ROUTER_REPOSITORY}:latest"
PROMETHEUS_BASE_IMAGE = "careops/prometheus-base:bookworm"
PROMETHEUS_IMAGE = "careops/prometheus:latest"
HUB_IMAGE = "careops/hub:latest"
LEARNER_IMAGE = "careops/learner:latest"
REDIS_BASE_IMAGE = "careops/redis-base:bookworm"
REDIS_IMAGE = "careops/redis:latest"
#: The images a lab container may run on a shared host (through the lab broker): what the modules start.
#: Not the hub, the learner's own server image or the grader (which holds the hidden tests).
LAB_IMAGES = (BASE_IMAGE, LAB_IMAGE, ADT_V1, ADT_V2, ADT_V2_FAULTY, CI_RUNNER_IMAGE, FHIR_FACADE_IMAGE, ROUTER_IMAGE)
#: Where a learner's own Dockerfile builds are tagged: <repository>:<learner id>-<build id> (careops.containerize)
LEARNER_BUILD_REPO = "careops-learner/adt"

LABEL_IMAGE = "org.careops.image"
LABEL_INPUTS = "org.careops.inputs"
LABEL_COURSE = "org.careops.course"
LABEL_SOURCE = "org.careops.source"
COURSE = "careops-labs"
#: what the workshop images are for (optional: a failure to build them never stops single-learner use)
WORKSHOP = "workshop mode (careops workshop)"
#: lab files (under labs/) the released notebooks read through careops.paths.lab_asset; never labs/*/solution*
LEARNER_ASSETS = (
    "legacy-adt/adt_service.py", "legacy-adt/adt.ini",  # module 1's service under test
    "legacy-adt/v2/adt_service.py",  # module 2 containerizes the fixed service
    "ci-pipeline/repo-template",  # module 1's repository
    "containerize/policy", "containerize/fhir-facade",  # module 2's Dockerfile policy, the façade's source
    "synthetic-data",  # module 4's extract, targets and legacy PID helpers
    "monitoring/series",  # module 5's recorded series (the rules' checks run promtool on them)
)


@dataclass(frozen=True)
class ImageSpec:
    """One image of the course.

    ``context`` is None for the base image (made by careops.images.base, not by
    a Dockerfile). Paths are relative to the repo root unless absolute.
    ``requirements`` is a requirements.in of bare project names: each is pinned
    to the version installed in the host environment. ``local_projects`` are
    source trees (e.g. "." for the careops toolkit) built into wheels.
    ``smoke`` commands must succeed in the new image (no network, read-only,
    ``smoke_user``) before it is tagged.
    """

    name: str
    tag: str
    context: str | None = None
    dockerfile: str = "Dockerfile"
    requirements: str | None = None
    local_projects: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    smoke: tuple[tuple[str, ...], ...] = ()
    smoke_user: str = "1000"
    #: extra files or folders of the repo copied into the build context: (repo path, path in the context)
    extra_context: tuple[tuple[str, str], ...] = ()
    #: when building everything, a failure here is a warning (only the module that needs it is affected)
    optional: str = ""
    #: for a base variant (``context`` None, not "base"): Debian packages debootstrap adds to the base's own
    debootstrap_include: tuple[str, ...] = ()
    #: for a base variant: paths (globs under the rootfs) its packages bring that the image does not need
    debootstrap_trim: tuple[str, ...] = ()
    #: a folder inside the context with package.json + package-lock.json: careops adds its node_modules,
    #: fetched on the host by ``npm ci`` (careops.images.npm), never in the build
    node_packages: str | None = None
    #: pure-Python projects the index has only as source archives: careops builds their wheels on the host
    #: (careops.images.wheelhouse.build_source_wheel) at the host's version
    source_builds: tuple[str, ...] = ()

    @property
    def repository(self) -> str:
        return self.tag.rsplit(":", 1)[0]

    def path(self, root: Path, rel: str) -> Path:
        p = Path(rel)
        return p if p.is_absolute() else root / p


@dataclass(frozen=True)
class ImageResult:
    """What ensure_images did for one image."""

    name: str
    tag: str
    image_id: str
    inputs_hash: str
    built: bool  # False: an image with the same inputs already existed
    seconds: float
    source: str  # base: "local image X" / "pulled X" / "debootstrap"; others: the build context


CATALOG: list[ImageSpec] = [
    ImageSpec(name="base", tag=BASE_IMAGE),
    ImageSpec(
        name="lab-runtime",
        tag=LAB_IMAGE,
        context="labs/images/lab-runtime",
        depends_on=("base",),
        smoke=(("python3", "-c", "import os, sys; sys.exit(os.getuid() != 1000)"),),
    ),
    ImageSpec(
        name="grader",
        tag=GRADER_IMAGE,
        context="grading/image",
        requirements="grading/image/requirements.in",
        local_projects=(".",),
        depends_on=("base",),
        # lab assets hidden tests read (careops.paths.lab_asset): the service, repo template, policies, extracts,
        # module 5's recorded series
        extra_context=(("labs/legacy-adt", "assets/legacy-adt"), ("labs/ci-pipeline", "assets/ci-pipeline"),
                       ("labs/containerize", "assets/containerize"), ("labs/synthetic-data", "assets/synthetic-data"),
                       ("labs/monitoring", "assets/monitoring")),
        smoke=(("nbgrader", "--version"),
               ("python", "-c", "import careops.checks.ci_pipeline as c; c.service_source(); c.sample_messages()")),
    ),
    # The case-study service's releases (labs/legacy-adt): v1 as the hospital runs
    # it, v2 fixed, v2-faulty the regression module 3 rolls back.
    ImageSpec(
        name="legacy-adt-v1",
        tag=ADT_V1,
        context="labs/legacy-adt",
        depends_on=("base",),
        smoke=(("python3", "/opt/legacy-adt/adt_service.py", "--help"),),
        smoke_user="0",
    ),
    ImageSpec(
        name="legacy-adt-v2",
        tag=ADT_V2,
        context="labs/legacy-adt",
        dockerfile="v2/Dockerfile",
        depends_on=("base",),
        smoke=(("python3", "/opt/adt/adt_service.py", "--help"),),
        smoke_user="10001",
    ),
    ImageSpec(
        name="legacy-adt-v2-faulty",
        tag=ADT_V2_FAULTY,
        context="labs/legacy-adt",
        dockerfile="v2/Dockerfile.faulty",
        depends_on=("legacy-adt-v2",),
        smoke=(("python3", "/opt/adt/adt_service.py", "--help"),),
        smoke_user="10001",
    ),
    # What each job of a learner's CI pipeline runs in (careops.pipeline).
    ImageSpec(
        name="ci-runner",
        tag=CI_RUNNER_IMAGE,
        context="labs/images/ci-runner",
        requirements="labs/images/ci-runner/requirements.in",
        local_projects=(".",),
        depends_on=("base",),
        smoke=(("pytest", "--version"), ("ruff", "--version"), ("hadolint", "--version"),
               ("python", "-c", "import careops.phi")),
    ),
    # Module 2's FHIR façade (labs/containerize/fhir-facade): HL7 ADT over MLLP in, FHIR R4 out.
    ImageSpec(
        name="fhir-facade",
        tag=FHIR_FACADE_IMAGE,
        context="labs/containerize/fhir-facade",
        requirements="labs/containerize/fhir-facade/requirements.in",
        depends_on=("base",),
        smoke=(("python3", "-c", "import sys; sys.path.insert(0, '/app'); import facade"),),
        smoke_user="10002",
    ),
    # Module 3's router: nginx (HTTP proxy + stream for MLLP) enters offline through a
    # debootstrapped variant of the base (careops.images.base.ensure_variant); labs/router adds the rest.
    ImageSpec(name="router-base", tag=ROUTER_BASE_IMAGE,
              debootstrap_include=("nginx", "libnginx-mod-stream"), optional="module 3 (safe deployments)"),
    ImageSpec(
        name="router",
        tag=ROUTER_IMAGE,
        context="labs/router",
        depends_on=("router-base",),
        smoke=(("nginx", "-v"), ("test", "-r", "/usr/lib/nginx/modules/ngx_stream_module.so")),
        smoke_user="10010",
        optional="module 3 (safe deployments)",
    ),
    # Module 5's Prometheus and promtool (Debian's prometheus package), entering offline the same way;
    # labs/monitoring/prometheus adds a non-root user and the folders careops copies config and rules into.
    # (the web UI's time-zone library brings 210 MB of per-zone data files it never loads: trimmed)
    ImageSpec(name="prometheus-base", tag=PROMETHEUS_BASE_IMAGE, debootstrap_include=("prometheus",),
              debootstrap_trim=("usr/share/javascript/moment-timezone/data",), optional="module 5 (monitoring)"),
    ImageSpec(
        name="prometheus",
        tag=PROMETHEUS_IMAGE,
        context="labs/monitoring/prometheus",
        depends_on=("prometheus-base",),
        smoke=(("prometheus", "--version"), ("promtool", "--version")),
        smoke_user="10020",
        optional="module 5 (monitoring)",
    ),
    # Workshop mode (careops.workshop): Node for the hub's proxy and libatomic for regopy (the learner's
    # Dockerfile policy check) enter offline through a debootstrapped variant of the base.
    ImageSpec(name="workshop-base", tag="careops/workshop-base:bookworm",
              debootstrap_include=("nodejs", "libatomic1"), optional=WORKSHOP),
    # One learner's JupyterLab, spawned by the hub: the toolkit and only the released notebooks
    # (build/release: no solutions, no hidden tests) and the lab files those notebooks read.
    ImageSpec(
        name="learner",
        tag=LEARNER_IMAGE,
        context="workshop/learner",
        requirements="workshop/learner/requirements.in",
        local_projects=(".",),
        depends_on=("workshop-base",),
        extra_context=(("build/release", "release"),) + tuple(
            (f"labs/{rel}", f"assets/{rel}") for rel in LEARNER_ASSETS),
        smoke=(("jupyterhub-singleuser", "--version"), ("jupyter", "lab", "--version"),
               ("python", "-c", ("import careops.checks, careops.lab; from careops.dockerfile.policy import "
                                 "evaluate_policy; evaluate_policy('FROM careops/base:bookworm\\nUSER 1000\\n')")),
               ("test", "-f", "/opt/careops-course/release/00-orientation/orientation.ipynb")),
        optional=WORKSHOP,
    ),
    # The hub: JupyterHub, DockerSpawner, NativeAuthenticator, the idle culler and configurable-http-proxy
    # (its npm packages fetched on the host, careops.images.npm), plus the toolkit's careops.workshop.
    ImageSpec(
        name="hub",
        tag=HUB_IMAGE,
        context="workshop/hub",
        requirements="workshop/hub/requirements.in",
        local_projects=(".",),
        node_packages="workshop/hub/proxy",
        source_builds=("onetimepass",),  # NativeAuthenticator's 2FA helper: published without a wheel
        depends_on=("workshop-base",),
        # the lab broker builds learners' Dockerfiles next to the ADT service they containerize
        extra_context=(("labs/legacy-adt/v2/adt_service.py", "assets/legacy-adt/v2/adt_service.py"),),
        smoke=(("jupyterhub", "--version"), ("configurable-http-proxy", "--version"),
               ("python", "-c", ("import dockerspawner, nativeauthenticator, jupyterhub_idle_culler, "
                                 "careops.workshop.auth, careops.workshop.spawner, careops.workshop.broker, "
                                 "careops.containerize.build, careops.containerize.layers; "
                                 "from careops.paths import lab_asset; lab_asset('legacy-adt/v2/adt_service.py')"))),
        optional=WORKSHOP,
    ),
    # The grading queue's Redis for a workshop host (careops.grading.queue): Debian's redis-server enters
    # offline through a debootstrapped variant of the base, like the router's nginx.
    ImageSpec(name="redis-base", tag=REDIS_BASE_IMAGE, debootstrap_include=("redis-server",),
              optional="workshop mode (the grading queue's Redis)"),
    ImageSpec(
        name="redis",
        tag=REDIS_IMAGE,
        context="labs/images/redis",
        depends_on=("redis-base",),
        smoke=(("redis-server", "--version"), ("test", "-r", "/etc/careops-redis/redis.conf")),
        smoke_user="redis",
        optional="workshop mode (the grading queue's Redis)",
    ),
]


def find(name: str, catalog: list[ImageSpec] | None = None) -> ImageSpec:
    """The spec called ``name`` (or tagged ``name``)."""
    for spec in catalog or CATALOG:
        if name in (spec.name, spec.tag, spec.repository):
            return spec
    known = ", ".join(s.name for s in catalog or CATALOG)
    raise CareOpsError(f"unknown image {name!r}: expected one of {known}",
                       fix=f"careops images build [{' | '.join(s.name for s in catalog or CATALOG)}]")


def select(names: list[str] | None, catalog: list[ImageSpec] | None = None) -> list[ImageSpec]:
    """The specs to ensure for ``names`` (None: all), with their dependencies, in build order."""
    catalog = catalog or CATALOG
    if not names:
        return list(catalog)
    wanted: set[str] = set()

    def add(spec: ImageSpec) -> None:
        if spec.name in wanted:
            return
        wanted.add(spec.name)
        for dep in spec.depends_on:
            add(find(dep, catalog))

    for n in names:
        add(find(n, catalog))
    return [s for s in catalog if s.name in wanted]
