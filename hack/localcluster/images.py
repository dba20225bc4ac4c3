"""Container images built on this machine, without a registry, loaded into the node.

A Debian tree made by debootstrap (trusting the host's CA certificates, so
builds can reach the package registries through this machine's TLS-inspecting
proxy) becomes the base image; Debian's dockerd builds everything else from
Dockerfiles (the project's own, with their base images passed as build
arguments, and small ones under hack/images/); `docker save | ctr import` hands
the images to the node's containerd. Every image is tagged with a hash of its
inputs, so it is rebuilt only when one of them changes.

dockerd (`dockerd.py`) runs only while something needs building. After a build, the
older tags of the images it replaced are removed, and the build cache beyond
BUILD_CACHE_KEEP (least recently used first): every change to the project's code makes
new chat and operator images, which would otherwise pile up on the disk the node's
kubelet also watches.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .dockerd import Docker
from .processes import ClusterError, log
from .versions import CACHE_ROOT, HACK, ROOT, Binaries

IMAGES_DIR = HACK / "images"
DEBIAN_SUITE = "bookworm"
# Bumped when how the base tree is made changes (its hash covers the rest).
BASE_RECIPE = "1"
BASE_PACKAGES = ("ca-certificates",)
# Trust the system store (which includes the host's CAs) in pip and Node.js too.
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
BASE_ENV = {"PIP_CERT": CA_BUNDLE, "NODE_EXTRA_CA_CERTS": CA_BUNDLE, "SSL_CERT_FILE": CA_BUNDLE}
SKIP_DIRS = {"__pycache__", "node_modules", "dist", ".mypy_cache", ".pytest_cache", "build"}


@dataclass(frozen=True)
class Image:
    """One image: its Dockerfile, what goes into its build context, what it is built on."""

    name: str
    dockerfile: Path
    context: Path | None = None  # a directory sent whole; None: a scratch context
    inputs: tuple[Path, ...] = ()  # files and directories that define the image
    files: Callable[[Binaries], dict[str, Path]] = field(default=lambda b: {})
    bases: dict[str, str] = field(default_factory=dict)  # build arg -> image name

    def repository(self) -> str:
        return f"local/chatenv-{self.name}"


def _binary(name: str) -> Callable[[Binaries], dict[str, Path]]:
    return lambda b: {name: b.path(name)}


def _pause(b: Binaries) -> dict[str, Path]:
    return {"pause": _build_pause()}


def _nodejs(b: Binaries) -> dict[str, Path]:
    return {"nodejs.tar": _nodejs_tar()}


PROJECT_INPUTS = tuple(ROOT / p for p in
                       (".dockerignore", "pyproject.toml", "README.md", "operator", "chat_service"))

IMAGES: dict[str, Image] = {i.name: i for i in (
    Image("pause", IMAGES_DIR / "pause" / "Dockerfile", inputs=(IMAGES_DIR / "pause",),
          files=_pause),
    Image("python", IMAGES_DIR / "python" / "Dockerfile", bases={"BASE_IMAGE": "debian"}),
    Image("node", IMAGES_DIR / "node" / "Dockerfile", files=_nodejs,
          bases={"BASE_IMAGE": "debian"}),
    Image("postgres", IMAGES_DIR / "postgres" / "Dockerfile", inputs=(IMAGES_DIR / "postgres",),
          files=lambda b: {"entrypoint.sh": IMAGES_DIR / "postgres" / "entrypoint.sh"},
          bases={"BASE_IMAGE": "debian"}),
    Image("redis", IMAGES_DIR / "redis" / "Dockerfile", bases={"BASE_IMAGE": "debian"}),
    Image("jaeger", IMAGES_DIR / "jaeger" / "Dockerfile", files=_binary("jaeger"),
          bases={"BASE_IMAGE": "debian"}),
    Image("coredns", IMAGES_DIR / "coredns" / "Dockerfile", files=_binary("coredns"),
          bases={"BASE_IMAGE": "debian"}),
    Image("traefik", IMAGES_DIR / "traefik" / "Dockerfile", files=_binary("traefik"),
          bases={"BASE_IMAGE": "debian"}),
    Image("local-path-provisioner", IMAGES_DIR / "local-path-provisioner" / "Dockerfile",
          files=_binary("local-path-provisioner"), bases={"BASE_IMAGE": "debian"}),
    Image("chat", ROOT / "Dockerfile.chat", context=ROOT, inputs=PROJECT_INPUTS,
          bases={"NODE_IMAGE": "node", "PYTHON_IMAGE": "python"}),
    Image("operator", ROOT / "Dockerfile.operator", context=ROOT, inputs=PROJECT_INPUTS,
          bases={"PYTHON_IMAGE": "python"}),
)}

# What the cluster itself runs (loaded before the kubelet starts) and what chatenv runs.
CLUSTER_IMAGES = ("pause", "coredns", "traefik", "local-path-provisioner", "debian")
PROJECT_IMAGES = ("chat", "operator", "postgres", "redis", "jaeger")
# Those made without a binary of the cluster's Go builds (they can build alongside them).
SOURCE_IMAGES = ("pause", "chat", "operator", "postgres", "redis")


# ----------------------------------------------------------------------------- hashing


def _hash_path(h: hashlib._Hash, path: Path, root: Path) -> None:
    if path.is_dir():
        for child in sorted(path.iterdir()):
            if child.name in SKIP_DIRS or child.suffix in (".pyc",) or child.name.endswith(
                    ".egg-info"):
                continue
            _hash_path(h, child, root)
        return
    h.update(str(path.relative_to(root) if path.is_relative_to(root) else path).encode())
    h.update(b"\0")
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    h.update(b"\0")


def _host_ca_files() -> list[Path]:
    return sorted(Path("/usr/local/share/ca-certificates").rglob("*.crt"))


def _apt_mirror() -> str:
    """The Debian mirror apt on this machine uses (plain HTTP needs no CA)."""
    for src in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        with contextlib.suppress(OSError):
            for line in src.read_text().splitlines():
                words = line.split()
                if words[:1] in (["URIs:"], ["deb"]):
                    url = next((w for w in words[1:] if "://" in w), "")
                    if url.rstrip("/").endswith("/debian"):
                        return url.rstrip("/")
    return "http://deb.debian.org/debian"


class Catalog:
    """Resolves image names to content-addressed references."""

    def __init__(self, binaries: Binaries) -> None:
        self.binaries = binaries
        self._refs: dict[str, str] = {}

    def ref(self, name: str) -> str:
        if name not in self._refs:
            self._refs[name] = f"local/chatenv-{name}:{self._digest(name)[:12]}"
        return self._refs[name]

    def _digest(self, name: str) -> str:
        h = hashlib.sha256()
        if name == "debian":
            h.update(f"{BASE_RECIPE} {DEBIAN_SUITE} {_apt_mirror()} {BASE_PACKAGES} {BASE_ENV}"
                     .encode())
            for ca in _host_ca_files():
                _hash_path(h, ca, ca.parent)
            return h.hexdigest()
        image = IMAGES[name]
        _hash_path(h, image.dockerfile, ROOT)
        for path in image.inputs:
            _hash_path(h, path, ROOT)
        for arg, base in sorted(image.bases.items()):
            h.update(f"{arg}={self.ref(base)}\0".encode())
        for fname, src in sorted(image.files(self.binaries).items()):
            h.update(f"{fname}\0".encode())
            _hash_path(h, src, src.parent)
        return h.hexdigest()


# ----------------------------------------------------------------------------- inputs


def _build_pause() -> Path:
    src = IMAGES_DIR / "pause" / "pause.go"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:12]
    out = CACHE_ROOT / f"pause-{digest}" / "pause"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-buildvcs=false")
        subprocess.run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out),
                        str(src)], cwd=src.parent, env=env, check=True)
    return out


def _nodejs_tar() -> Path:
    """The machine's Node.js (its binary and npm's package), as a tar to unpack on the base."""
    node = shutil.which("node")
    npm = Path("/usr/lib/node_modules/npm")
    if not node or not (npm / "bin" / "npm-cli.js").exists():
        raise ClusterError("the web UI's build stage needs Node.js 20 and npm on this machine "
                           "(/usr/bin/node, /usr/lib/node_modules/npm); Debian's Node.js 18 is "
                           "too old for Vite 8")
    versions = subprocess.run([node, "-e", "console.log(process.version)"], capture_output=True,
                              text=True, check=True).stdout.strip()
    npm_version = json.loads((npm / "package.json").read_text())["version"]
    out = CACHE_ROOT / "images" / f"nodejs-{versions}-npm-{npm_version}.tar"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as tar:
        tar.add(os.path.realpath(node), arcname="usr/bin/node")
        tar.add(npm, arcname="usr/lib/node_modules/npm")
        for tool in ("npm", "npx"):
            link = tarfile.TarInfo(f"usr/bin/{tool}")
            link.type = tarfile.SYMTYPE
            link.linkname = f"../lib/node_modules/npm/bin/{tool}-cli.js"
            tar.addfile(link)
    tmp.rename(out)
    return out


def _debootstrap(tree: Path) -> None:
    if not shutil.which("debootstrap"):
        raise ClusterError("debootstrap is needed for the base image: install the Debian "
                           "package debootstrap (hack/setup does)")
    mirror = _apt_mirror()
    log(f"making the Debian {DEBIAN_SUITE} base tree with debootstrap from {mirror} (about 1 min)")
    res = subprocess.run(["debootstrap", "--variant=minbase",
                          f"--include={','.join(BASE_PACKAGES)}", DEBIAN_SUITE, str(tree), mirror],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise ClusterError(f"debootstrap failed:\n{(res.stdout + res.stderr)[-3000:]}")
    # The host's CA certificates, so that builds on this base reach the registries.
    target = tree / "usr/local/share/ca-certificates"
    target.mkdir(parents=True, exist_ok=True)
    for ca in _host_ca_files():
        shutil.copy(ca, target / ca.name)
    subprocess.run(["chroot", str(tree), "update-ca-certificates"], capture_output=True,
                   check=True)
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for f in (tree / cache).glob("*"):
            if f.is_file():
                f.unlink()


# ----------------------------------------------------------------------------- the plan


def _closure(names: list[str]) -> list[str]:
    """The images asked for and what they are built on, bases first."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name != "debian":
            for base in IMAGES[name].bases.values():
                visit(base)
        order.append(name)

    for n in names:
        visit(n)
    return order


@contextlib.contextmanager
def _scratch_context(image: Image, binaries: Binaries) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"chatenv-image-{image.name}.") as tmp:
        ctx = Path(tmp)
        for fname, src in image.files(binaries).items():
            try:
                os.link(src, ctx / fname)
            except OSError:
                shutil.copy2(src, ctx / fname)
        yield ctx


BUILT_INDEX = CACHE_ROOT / "images" / "built.txt"  # references dockerd's cache holds
# Build cache kept after a build (the newest steps: the next build of changed code reuses
# its dependency layers).
BUILD_CACHE_KEEP = "4GB"


def _built() -> set[str]:
    if not (CACHE_ROOT / "docker").is_dir():
        return set()
    try:
        return set(BUILT_INDEX.read_text().split())
    except FileNotFoundError:
        return set()


def _record_built(ref: str) -> None:
    BUILT_INDEX.parent.mkdir(parents=True, exist_ok=True)
    with BUILT_INDEX.open("a") as f:
        f.write(ref + "\n")


def superseded(listed: list[str], current: list[str]) -> list[str]:
    """The references in ``listed`` that are other tags of a repository ``current`` has a
    tag of: images an earlier build of the same image left."""
    repositories = {ref.rsplit(":", 1)[0] for ref in current}
    return [ref for ref in listed
            if ref not in current and ref.rsplit(":", 1)[0] in repositories]


def _prune(docker: Docker, current: list[str]) -> None:
    listed = docker.docker("image", "ls", "--filter", "reference=local/chatenv-*",
                           "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    old = superseded(listed, current)
    if old:
        docker.docker("rmi", *old, check=False)
        gone = set(old)
        BUILT_INDEX.write_text("".join(f"{r}\n" for r in _built() if r not in gone))
        log(f"removed {len(old)} superseded image(s)")
    docker.docker("builder", "prune", "--all", "--force", "--keep-storage", BUILD_CACHE_KEEP,
                  check=False)


def ensure_images(binaries: Binaries, names: list[str], *, present: set[str],
                  importer: Callable[[int], None] | None) -> dict[str, str]:
    """Build what is missing and hand what the node lacks to it; returns name -> reference.

    ``present`` holds the references the node already has; ``importer`` reads a
    `docker save` tar of the missing ones from a file descriptor (None: build only).
    dockerd starts only when something is to be built or loaded.
    """
    catalog = Catalog(binaries)
    refs = {n: catalog.ref(n) for n in _closure(names)}
    wanted = {n: refs[n] for n in names}
    missing = [ref for ref in wanted.values() if ref not in present] if importer else []
    built = _built()
    if not missing and all(ref in built for ref in refs.values()):
        return wanted
    # A short path: dockerd's own containerd socket lives under it (108 bytes at most).
    run_dir = Path(tempfile.mkdtemp(prefix="chatenv-docker."))
    with Docker(run_dir) as docker:
        built_now = False
        for name, ref in refs.items():
            if ref in built:
                continue
            if docker.has(ref):
                _record_built(ref)
                continue
            started = time.monotonic()
            if name == "debian":
                with tempfile.TemporaryDirectory(prefix="chatenv-debian.",
                                                 dir=CACHE_ROOT) as tmp:
                    _debootstrap(Path(tmp) / "tree")
                    docker.import_tree(ref, Path(tmp) / "tree", BASE_ENV)
            else:
                image = IMAGES[name]
                log(f"building image {ref}")
                args = {arg: refs[base] for arg, base in image.bases.items()}
                if image.context is not None:
                    docker.build(ref, image.dockerfile, image.context, args)
                else:
                    with _scratch_context(image, binaries) as ctx:
                        docker.build(ref, image.dockerfile, ctx, args)
            _record_built(ref)
            built_now = True
            log(f"built {ref} in {time.monotonic() - started:.0f} s")
        if built_now:
            _prune(docker, list(refs.values()))
        if importer is not None and missing:
            started = time.monotonic()
            log(f"loading {len(missing)} image(s) into the node")
            docker.save_into(missing, importer)
            log(f"loaded in {time.monotonic() - started:.0f} s")
    return wanted
