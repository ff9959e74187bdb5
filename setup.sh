#!/usr/bin/env bash
# Installs what `snakemake --cores all` needs: this package with its test extras, pinned by
# constraints.txt, in a Python environment of its own, and, for the paper, TeX (latexmk +
# pdflatex) through apt-get on Debian/Ubuntu. Elsewhere it says what to install; everything
# but the PDF works without TeX (--keep-going).
#
# The environment: the active virtual or conda environment if there is one (then `.venv`
# becomes a link to it), else a new virtual environment in `.venv` (system interpreters
# refuse `pip install`, PEP 668). Either way `.venv/bin/` holds the python, snakemake,
# pytest and ruff the README's commands use.
# Needs python3 >= 3.11 (constraints.txt pins numpy 2.4, which needs it) with its venv module
# (Debian/Ubuntu: apt-get install python3-venv).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v latexmk >/dev/null || ! command -v pdflatex >/dev/null; then
    if command -v apt-get >/dev/null; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        echo "setup.sh: installing TeX for the paper with apt-get (a few minutes)" >&2
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq --no-install-recommends latexmk texlive-latex-recommended \
            texlive-latex-extra texlive-fonts-recommended lmodern >/dev/null
    else
        echo "setup.sh: no apt-get; install TeX Live with latexmk (macOS: MacTeX) for the paper." >&2
    fi
fi

active_env=${VIRTUAL_ENV:-${CONDA_PREFIX:-}}
if [ -n "$active_env" ] && [ "$(realpath "$active_env")" != "$(realpath -m .venv)" ]; then
    if [ -e .venv ] && [ ! -L .venv ]; then
        echo "setup.sh: .venv exists and is not the active environment ($active_env);" \
            "deactivate it to use .venv, or remove .venv to use $active_env" >&2
        exit 1
    fi
    echo "setup.sh: installing into the active environment $active_env (.venv links to it)" >&2
    ln -sfn "$active_env" .venv
elif [ ! -x .venv/bin/python ]; then
    python=$(command -v python3 || command -v python || true)
    [ -n "$python" ] || { echo "setup.sh: no python3 on PATH" >&2; exit 1; }
    echo "setup.sh: making a virtual environment in .venv ($("$python" --version))" >&2
    "$python" -m venv .venv || {
        echo "setup.sh: '$python -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2
        exit 1
    }
fi
.venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "setup.sh: needs Python >= 3.11 (constraints.txt's versions), .venv has" \
        "$(.venv/bin/python --version); remove .venv and run with a newer python3 on PATH" >&2
    exit 1
}
.venv/bin/python -m pip install --progress-bar off -c constraints.txt -e ".[test]"
echo "setup.sh: done; run the workflow with .venv/bin/snakemake (or: source .venv/bin/activate)" >&2
