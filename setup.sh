#!/usr/bin/env bash
# Installs what `snakemake --cores all` needs: this package with its test extras, and,
# for the paper, TeX (latexmk + pdflatex) through apt-get on Debian/Ubuntu. Elsewhere it
# says what to install; everything but the PDF works without TeX (--keep-going).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v latexmk >/dev/null || ! command -v pdflatex >/dev/null; then
    if command -v apt-get >/dev/null; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq --no-install-recommends latexmk texlive-latex-recommended \
            texlive-latex-extra texlive-fonts-recommended lmodern >/dev/null
    else
        echo "setup.sh: no apt-get; install TeX Live with latexmk (macOS: MacTeX) for the paper." >&2
    fi
fi
python -m pip install -e ".[test]"
