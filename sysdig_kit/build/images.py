"""Builder images: render dockerfiles/*.Dockerfile.j2 (shipped in the package:
sysdig_kit/build/dockerfiles/, which the top-level dockerfiles/ links to), build them with the
Docker SDK, run steps.

Images are tagged by a hash of their rendered Dockerfile, so an image is rebuilt only when its
inputs change and a warm run costs one `inspect`.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections import deque
from pathlib import Path

import docker
import docker.errors
import jinja2
from rich.console import Console
from rich.markup import escape

from ..errors import KitError
from ..paths import package_data

DOCKERFILES = package_data("build", "dockerfiles")
console = Console(stderr=True)

START_HINT = (
    "start it as root with `dockerd >/var/log/dockerd.log 2>&1 &` (or `systemctl start docker`), "
    "or add yourself to the `docker` group; `bash tests/setup/30-docker.sh` does it all"
)


def client() -> docker.DockerClient:
    """The engine at $DOCKER_HOST (default /var/run/docker.sock), or one clear KitError."""
    try:
        c = docker.from_env(timeout=600)
        c.ping()
        return c
    except docker.errors.DockerException as exc:
        why = "permission denied" if "ermission" in str(exc) else "no Docker engine answers"
        raise KitError(f"Docker: {why} ({os.environ.get('DOCKER_HOST', 'unix:///var/run/docker.sock')}); {START_HINT}") from None


def render(template: str, **params) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(DOCKERFILES), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True)
    return env.get_template(f"{template}.Dockerfile.j2").render(**params)


def image_tag(name: str, dockerfile: str) -> str:
    """`sysdig-kit/NAME:<hash of the rendered Dockerfile>`: a new text is a new image."""
    return f"sysdig-kit/{name}:{hashlib.sha256(dockerfile.encode()).hexdigest()[:12]}"


def ensure(c: docker.DockerClient, name: str, dockerfile: str, log_dir: Path) -> str:
    """Build the image `sysdig-kit/NAME:<hash>` unless it exists; return its tag."""
    tag = image_tag(name, dockerfile)
    try:
        c.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    base = next((ln.split()[1] for ln in dockerfile.splitlines() if ln.startswith("FROM ")), "")
    try:
        c.images.get(base)
    except docker.errors.ImageNotFound:
        raise KitError(f"base image {base} missing: `docker pull {base}`, or without a registry "
                       "`bash tests/setup/30-docker.sh` makes it with mmdebstrap") from None
    ctx = io.BytesIO()
    with tarfile.open(fileobj=ctx, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile.encode())
        tar.addfile(info, io.BytesIO(dockerfile.encode()))
    ctx.seek(0)
    log = log_dir / f"image-{name}.log"
    tail: deque[str] = deque(maxlen=25)
    with log.open("w") as f, console.status(f"building image {tag}") as status:
        for chunk in c.api.build(fileobj=ctx, custom_context=True, tag=tag, rm=True,
                                 forcerm=True, decode=True):
            line = chunk.get("stream") or chunk.get("status") or ""
            if "error" in chunk:
                line = "ERROR: " + chunk["error"]
            if line.strip():
                f.write(line if line.endswith("\n") else line + "\n")
                tail.append(line.rstrip())
                status.update(escape(f"building image {tag}: {line.strip()[:90]}"))
            if "error" in chunk:
                raise KitError(f"building image {tag} failed:\n" + "\n".join(tail)
                               + f"\nfull log: {log}")
    console.print(f"built image {tag} (log: {log})")
    for old in c.images.list(name=f"sysdig-kit/{name}"):  # earlier inputs: ~1 GB each
        for t in old.tags:
            if t != tag:
                try:
                    c.images.remove(t)
                except docker.errors.APIError:
                    pass  # in use by a container: leave it
    return tag


def read_file(c: docker.DockerClient, image: str, path: str) -> str:
    """The text of one file inside an image, without starting a container."""
    ct = c.containers.create(image, command=["true"])
    try:
        stream, _ = ct.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.getmembers()[0]
            return tar.extractfile(member).read().decode().strip()
    finally:
        ct.remove(force=True)


def run(c: docker.DockerClient, image: str, command: list[str], volumes: dict, log: Path,
        what: str, environment: dict | None = None) -> None:
    """Run one step in a container, log to LOG; on failure, KitError with the log's last lines."""
    ct = c.containers.run(image, command, volumes=volumes, environment=environment or {},
                          detach=True, working_dir="/")
    tail: deque[str] = deque(maxlen=20)
    try:
        with log.open("w") as f, console.status(what) as status:
            buf = b""
            for chunk in ct.logs(stream=True, follow=True):
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    line = raw.decode(errors="replace")
                    f.write(line + "\n")
                    tail.append(line)
                    status.update(escape(f"{what}: {line.strip()[:90]}"))
            if buf:
                f.write(buf.decode(errors="replace"))
                tail.append(buf.decode(errors="replace"))
        rc = ct.wait()["StatusCode"]
    finally:
        ct.remove(force=True)
    if rc != 0:
        raise KitError(f"{what} failed (exit {rc}); last lines:\n" + "\n".join(tail)
                       + f"\nfull log: {log}")
