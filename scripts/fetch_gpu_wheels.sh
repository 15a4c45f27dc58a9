#!/usr/bin/env bash
# Wheels for a GPU machine without network: run HERE, on a CPU machine with network;
# scripts/gpu_check.sh installs them THERE (docs/gpu.md).
#
#   bash scripts/fetch_gpu_wheels.sh [DIR]        # DIR defaults to .whl (git-ignored)
#
# DIR receives, for the GPU image's Python (GPU_PYTHON_VERSION, 3.12) on manylinux x86_64:
#   * mamba-ssm (MAMBA_SSM_VERSION) built here from its source without the CUDA extension
#     (MAMBA_SKIP_CUDA_BUILD): dnahnet uses only its Triton kernels, which compile on the GPU;
#   * every dependency of dnahnet that the stock PyTorch GPU image lacks, at the version
#     installed in this checkout's .venv (so the GPU runs what the tests here ran);
#   * MANIFEST.tsv: one row per wheel (name, version, file, bytes, sha256, origin).
# Left out on purpose: mamba-ssm's Mamba3 requirements (tilelang, apache-tvm-ffi,
# quack-kernels: ~140 MB with quack's cutlass libraries, never imported by the Triton SSD
# scan or the gated RMSNorm) and everything the image already has. gpu_check.sh trims mamba_ssm/__init__.py,
# whose eager imports need the CUDA extension (selective_scan_cuda) and transformers.
# Before anything is replaced, the wheels are checked: tags installable on the target,
# and every requirement of every wheel and of dnahnet met by a wheel, the image, or a
# deliberate omission above.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${1:-.whl}
DIR=${DIR%/}
PYTHON=${PYTHON:-.venv/bin/python}
GPU_PYTHON_VERSION=${GPU_PYTHON_VERSION:-3.12}
MAMBA_SSM_VERSION=${MAMBA_SSM_VERSION:-2.3.2.post1}
# dnahnet's dependencies missing from the GPU image, and theirs (gffutils -> pyfaidx, argh,
# argcomplete); versions are read from $PYTHON's environment.
FROM_VENV="pysam biopython gffutils pyfaidx argh argcomplete pyBigWig"
# What the GPU image provides that these wheels and dnahnet require (device KINDS.md).
IMAGE_PROVIDES="torch triton einops ninja packaging setuptools transformers numpy typer rich
pandas safetensors matplotlib pyarrow simplejson six pytest pytest-xdist"
OMITTED="tilelang apache-tvm-ffi quack-kernels"

die() { echo "fetch_gpu_wheels: error: $*" >&2; exit 1; }

[ -x "$PYTHON" ] || die "$PYTHON not found: run 'make setup' first (or set PYTHON)"
"$PYTHON" -c "import torch" 2>/dev/null ||
    die "$PYTHON cannot import torch (mamba-ssm's setup.py needs it): run 'make setup'"
if [ -e "$DIR" ] && [ ! -f "$DIR/MANIFEST.tsv" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
    die "$DIR holds files this script did not write (no MANIFEST.tsv): empty it or give another DIR"
fi

pip() { "$PYTHON" -m pip "$@"; }
TARGET=(--python-version "$GPU_PYTHON_VERSION" --implementation cp
        --abi "cp${GPU_PYTHON_VERSION/./}" --abi abi3 --abi none)
for n in $(seq 17 39); do TARGET+=(--platform "manylinux_2_${n}_x86_64"); done
TARGET+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)

NEW=$(mktemp -d "$DIR.new.XXXXXX")
CHECK_SITE=$(mktemp -d)
trap 'rm -rf "$NEW" "$CHECK_SITE"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "fetch_gpu_wheels: building mamba-ssm==$MAMBA_SSM_VERSION without its CUDA extension" >&2
# --no-cache-dir: never reuse a wheel cached from a build with the extension
MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE \
    pip wheel -q --no-deps --no-build-isolation --no-cache-dir -w "$NEW" \
    "mamba-ssm==$MAMBA_SSM_VERSION" 2>&1 | grep -v "^WARNING: Location" >&2 || true
ls "$NEW"/mamba_ssm-*.whl >/dev/null 2>&1 || die "building mamba-ssm==$MAMBA_SSM_VERSION failed"

for name in $FROM_VENV; do
    version=$("$PYTHON" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" \
        "$name" 2>/dev/null) || die "$name is not installed in $PYTHON's environment: run 'make setup'"
    echo "fetch_gpu_wheels: downloading $name==$version for CPython $GPU_PYTHON_VERSION" >&2
    pip download -q --no-deps --only-binary=:all: "${TARGET[@]}" -d "$NEW" "$name==$version" \
        2>&1 | grep -v "^WARNING: Location" >&2 || true
    ls "$NEW" | grep -qi "^${name//-/_}-$version-" ||
        die "no wheel of $name==$version for CPython $GPU_PYTHON_VERSION manylinux x86_64"
done

echo "fetch_gpu_wheels: checking requirements and tags" >&2
"$PYTHON" - "$NEW" "$GPU_PYTHON_VERSION" "$IMAGE_PROVIDES" "$OMITTED" "$MAMBA_SSM_VERSION" <<'PY'
import hashlib
import sys
import tomllib
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

folder, python_version, image, omitted, mamba_version = sys.argv[1:]
image = {canonicalize_name(n) for n in image.split()}
omitted = {canonicalize_name(n) for n in omitted.split()}
env = dict(default_environment(), python_version=python_version,
           python_full_version=python_version + ".0", sys_platform="linux",
           platform_system="Linux", platform_machine="x86_64", extra="")

wheels, needs = {}, []
for path in sorted(Path(folder).glob("*.whl")):
    name, version, _, tags = parse_wheel_filename(path.name)
    if name in wheels:
        sys.exit(f"fetch_gpu_wheels: error: two wheels of {name}: pip would refuse both")
    wheels[name] = (version, path)
    with zipfile.ZipFile(path) as whl:
        meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
        lines = whl.read(meta).decode().splitlines()
    needs += [(name, line.split(":", 1)[1].strip()) for line in lines
              if line.startswith("Requires-Dist:")]
pyproject = tomllib.loads(Path("pyproject.toml").read_text())["project"]
needs += [("dnahnet", r) for r in pyproject["dependencies"]]
needs += [("dnahnet[dev]", r) for r in pyproject["optional-dependencies"]["dev"]
          if not r.startswith(("ruff", "snakemake"))]  # lint and workflow tools: not run there

unmet = []
for who, text in needs:
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate(env):
        continue
    name = canonicalize_name(req.name)
    if name in wheels:
        if wheels[name][0] not in req.specifier:
            unmet.append(f"{who} needs {text}, the wheel is {wheels[name][0]}")
    elif name not in image | omitted:
        unmet.append(f"{who} needs {text}: neither a wheel here nor in the GPU image")
if unmet:
    sys.exit("fetch_gpu_wheels: error: " + "; ".join(unmet))

with open(Path(folder) / "MANIFEST.tsv", "w") as out:
    out.write(f"# wheels for CPython {python_version} manylinux x86_64; "
              f"install: scripts/gpu_check.sh (docs/gpu.md)\n")
    out.write("name\tversion\tfile\tbytes\tsha256\torigin\n")
    for name, (version, path) in sorted(wheels.items()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        origin = ("built here, MAMBA_SKIP_CUDA_BUILD=TRUE" if name == "mamba-ssm"
                  else "PyPI, version as in .venv")
        out.write(f"{name}\t{version}\t{path.name}\t{path.stat().st_size}\t{digest}\t{origin}\n")
PY

# pip itself, told the target's Python and platforms, must accept every file.
pip install -q --no-index --no-deps --only-binary=:all: "${TARGET[@]}" --target "$CHECK_SITE" \
    "$NEW"/*.whl 2>&1 | grep -v "^WARNING: Location" >&2 || true
for whl in "$NEW"/*.whl; do
    name=$(basename "$whl" | cut -d- -f1)
    ls -d "$CHECK_SITE/$name"-*.dist-info >/dev/null 2>&1 ||
        die "pip would not install $(basename "$whl") for CPython $GPU_PYTHON_VERSION"
done

if [ -e "$DIR" ]; then
    OLD=$(mktemp -d "$DIR.old.XXXXXX")
    mv "$DIR" "$OLD/"
    mv "$NEW" "$DIR"
    rm -rf "$OLD"
else
    mv "$NEW" "$DIR"
fi
chmod 755 "$DIR"  # mktemp made it private

echo "fetch_gpu_wheels: $DIR (CPython $GPU_PYTHON_VERSION, manylinux x86_64):"
awk -F'\t' 'NR > 2 {printf "  %-14s %-12s %9.2f MiB  %s\n", $1, $2, $4 / 1048576, $6}' \
    "$DIR/MANIFEST.tsv"
total=$(du -cb "$DIR"/*.whl | tail -n 1 | cut -f 1)
tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null |
    tail -n 1 | cut -f 1)
mib() { awk -v b="$1" 'BEGIN {printf "%.2f", b / 1048576}'; }
echo "  total $(mib "$total") MiB; with the working tree that travels ($(mib "$tree") MiB):" \
    "$(mib $((total + tree))) MiB of the 64 MiB a device call carries"
