"""Scan what a learner's layers added to an image, and its history, for secrets and PHI-like data.

Why: ``docker history`` and ``docker save`` show every layer to anyone with the
image; a file deleted in a later step is still in the earlier layer. Only the
layers above the base image are scanned (the base is the course's own).
"""
from __future__ import annotations

import json
import tarfile
import tempfile
from dataclasses import dataclass, field

import docker

from careops import engine
from careops.lab.backend import via_broker
from careops.lab.connect import broker_backend
from careops.secretscan import scan_texts
from careops.phi import HIGH_PRECISION_KINDS, scan_text
from careops.report import theme

MAX_FILE = 1024 * 1024
MAX_FILES = 2000


@dataclass
class LayerScan:
    """Findings of one image scan; each a short text naming the layer file or history entry (values masked)."""

    secrets: list[str] = field(default_factory=list)
    phi: list[str] = field(default_factory=list)
    files: int = 0
    layers: int = 0

    @property
    def ok(self) -> bool:
        return not self.secrets and not self.phi

    def __str__(self) -> str:
        head = (f"layer scan: {self.layers} layer(s) of your own, {self.files} text file(s): "
                f"{len(self.secrets)} secret(s), {len(self.phi)} real-looking PHI")
        return "\n".join([head] + [f"  secret: {x}" for x in self.secrets] + [f"  PHI: {x}" for x in self.phi])

    def _repr_html_(self) -> str:
        status = theme.verdict(self.ok, "nothing found", f"{len(self.secrets)} secret(s), {len(self.phi)} PHI")
        body = theme.para(theme.esc(f"{self.layers} layer(s) of your own, {self.files} text file(s) read"))
        body += theme.items([(False, theme.esc(f"secret: {x}")) for x in self.secrets]
                            + [(False, theme.esc(f"PHI: {x}")) for x in self.phi])
        return theme.card("Layer scan", body, status=status, ok=self.ok)


def _texts_of_layer(tar: tarfile.TarFile, member: tarfile.TarInfo, out: dict[str, bytes]) -> None:
    fobj = tar.extractfile(member)
    if fobj is None:
        return
    with tarfile.open(fileobj=fobj, mode="r|") as layer:
        for entry in layer:
            if len(out) >= MAX_FILES:
                return
            if not entry.isfile() or entry.size > MAX_FILE or entry.name.split("/")[-1].startswith(".wh."):
                continue
            data = layer.extractfile(entry)
            content = data.read() if data else b""
            if b"\x00" in content[:4096]:
                continue  # binary (a database, a .pyc): the PHI and secret scanners read text
            out[entry.name] = content


def scan_image(image: str, base: str, *, client: docker.DockerClient | None = None) -> LayerScan:
    """Secrets and real-looking PHI in the layers ``image`` has on top of ``base``, its history and its ENV.

    Through the workshop's lab broker (no ``client``, CAREOPS_BROKER_URL set) the broker scans: the image is there.
    """
    if client is None and via_broker():
        found = broker_backend().operation("images/scan", {"ref": image, "base": base}, what=f"scan image {image}")
        return LayerScan(**found)
    cl = client or engine.client()
    info = cl.api.inspect_image(image)
    base_layers = len((cl.api.inspect_image(base).get("RootFS") or {}).get("Layers") or [])
    texts: dict[str, bytes] = {}
    result = LayerScan()
    with tempfile.TemporaryFile() as tmp:
        for chunk in cl.api.get_image(info["Id"]):
            tmp.write(chunk)
        tmp.seek(0)
        with tarfile.open(fileobj=tmp, mode="r:") as saved:
            manifest = json.load(saved.extractfile("manifest.json"))  # type: ignore[arg-type]
            ours = manifest[0]["Layers"][base_layers:]
            result.layers = len(ours)
            for name in ours:
                _texts_of_layer(saved, saved.getmember(name), texts)
    result.files = len(texts)
    history = [h.get("CreatedBy", "") for h in cl.api.history(info["Id"])]
    env = (info.get("Config") or {}).get("Env") or []
    named = {f"layer:{path}": content for path, content in texts.items()}
    named["history.sh"] = "\n".join(history).encode()
    named["image-env.env"] = "\n".join(env).encode()
    result.secrets = [str(f) for f in scan_texts(named)]
    for where, content in named.items():
        for finding in scan_text(content.decode("utf-8", "replace"), source=where, kinds=HIGH_PRECISION_KINDS):
            if not finding.synthetic:
                result.phi.append(str(finding))
    return result
