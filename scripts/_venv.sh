# The project's own virtual environment, shared by scripts/test and scripts/demo. Source it, then call
#     ensure_venv EXTRA[,EXTRA...]      e.g. ensure_venv test,local,docs
# from the repository root. Afterwards $VENV_PYTHON (.venv/bin/python) has `-e '.[EXTRAS]'` installed,
# and nothing else but what pyproject.toml pulls in: the venv never sees the system's site-packages, so
# it works the same on a machine full of packages, with no venv active, and on a system Python that is
# "externally managed" (PEP 668), where `pip install` outside a venv is refused.
#
# .venv/.pynamodb-stash-env records the marker format, the SHA-256 of pyproject.toml and the extras
# installed so far. .venv is rebuilt from scratch when that file is missing, pyproject.toml changed or its
# Python no longer runs (a user's own .venv without the file is replaced too);
# extras that a script needs and the venv lacks are added to it without a rebuild. The file is written
# only after a successful install, so an interrupted one is redone next time.
#
# The interpreter is $PYTHON, default python3 (3.9+).

VENV_DIR=".venv"
VENV_PYTHON="$VENV_DIR/bin/python"
VENV_MARKER="$VENV_DIR/.pynamodb-stash-env"
VENV_MARKER_FORMAT=1

# A stray PYTHONPATH would put packages the project does not declare in front of the venv's own.
unset PYTHONPATH PYTHONHOME

step() {
    printf '==> %s\n' "$*" >&2
}

# Fail with one line on stderr.
die() {
    printf '%s: %s\n' "$0" "$*" >&2
    exit 1
}

_sha256() {
    "$1" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$2"
}

# The value of KEY in the marker file, or nothing.
_marker_get() {
    [[ -f "$VENV_MARKER" ]] || return 0
    sed -n "s/^$1=//p" "$VENV_MARKER" | head -n 1
}

# Sorted, comma-separated union of comma-separated lists.
_extras_union() {
    printf '%s\n' "$@" | tr ',' '\n' | sed '/^$/d' | LC_ALL=C sort -u | paste -sd, -
}

_create_venv() {
    local base="${PYTHON:-python3}" log
    command -v "$base" >/dev/null 2>&1 \
        || die "$base not found; install Python 3.9 or newer (or set PYTHON to one)"
    local version where
    where="$(command -v "$base")"
    version="$("$base" -c 'import platform; print(platform.python_version())' 2>/dev/null || true)"
    "$base" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null \
        || die "$where is Python ${version:-of unknown version}; Python 3.9 or newer is needed (set PYTHON to one)"

    # Debian and Ubuntu ship ensurepip, venv's pip bootstrap, in a separate package, python3.X-venv.
    local pkg="python3-venv"
    if [[ "$version" == *.*.* ]]; then
        pkg="python${version%.*}-venv"
    fi
    local no_venv="$where cannot create a virtual environment (its venv module or ensurepip is missing);"
    no_venv+=" on Debian/Ubuntu: sudo apt-get install $pkg"
    "$base" -c 'import venv, ensurepip' 2>/dev/null || die "$no_venv"

    step "creating $VENV_DIR with $where (Python $version)"
    rm -rf "$VENV_DIR"
    log="$(mktemp)"
    if ! "$base" -m venv "$VENV_DIR" >"$log" 2>&1; then
        rm -rf "$VENV_DIR"
        if tr -s ' \n' '  ' <"$log" | grep -qi 'ensurepip is not available'; then
            rm -f "$log"
            die "$no_venv"
        fi
        cat "$log" >&2
        rm -f "$log"
        die "$where -m venv $VENV_DIR failed (output above)"
    fi
    rm -f "$log"
    # PEP 660 editable installs need pip 21.3+; only an old Python bundles an older one.
    if ! "$VENV_PYTHON" -c 'import sys
from pip import __version__ as v
sys.exit(tuple(int(p) for p in v.split(".")[:2]) < (21, 3))' 2>/dev/null; then
        step "upgrading pip in $VENV_DIR"
        "$VENV_PYTHON" -m pip install -q --upgrade pip
    fi
}

_install_extras() {
    local extras="$1" hash="$2"
    step "installing -e '.[$extras]' into $VENV_DIR (pip -q; a minute or two on a fresh venv)"
    "$VENV_PYTHON" -m pip install -q -e ".[$extras]"
    printf 'format=%s\npyproject_sha256=%s\nextras=%s\n' "$VENV_MARKER_FORMAT" "$hash" "$extras" \
        >"$VENV_MARKER"
}

ensure_venv() {
    local wanted have hash="" reason
    wanted="$(_extras_union "$1")"

    if [[ ! -d "$VENV_DIR" ]]; then
        reason=""
    elif ! { [[ -x "$VENV_PYTHON" ]] && "$VENV_PYTHON" -c '' 2>/dev/null; }; then
        reason="its Python does not run"
    elif [[ "$(_marker_get format)" != "$VENV_MARKER_FORMAT" ]]; then
        reason="it has no $(basename "$VENV_MARKER") marker of this format"
    else
        hash="$(_sha256 "$VENV_PYTHON" pyproject.toml)"
        if [[ "$(_marker_get pyproject_sha256)" != "$hash" ]]; then
            reason="pyproject.toml changed"
        else
            have="$(_marker_get extras)"
            if [[ "$(_extras_union "$have" "$wanted")" == "$have" ]]; then
                step "$VENV_DIR is up to date (extras: $have)"
            else
                _install_extras "$(_extras_union "$have" "$wanted")" "$hash"
            fi
            return 0
        fi
    fi

    if [[ -n "$reason" ]]; then
        step "rebuilding $VENV_DIR: $reason"
    fi
    _create_venv
    _install_extras "$wanted" "$(_sha256 "$VENV_PYTHON" pyproject.toml)"
}
