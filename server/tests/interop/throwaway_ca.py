"""A throwaway certificate authority for federation tests (openssl).

Servers on loopback cannot get publicly trusted certificates, but s2s
authentication (certificate checks, SASL EXTERNAL) needs a chain a peer
trusts: the tests make a CA valid for two days, issue leaf certificates for
their test domains with it, and give its certificate to each peer as a
trust anchor. The keys are EC P-256, fast to generate.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterable


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d: Path, name: str) -> Path:
    """A self-signed CA in `d`: NAME.crt and NAME.key. Returns the certificate."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
            "-out", f"{name}.crt", cwd=d)
    return d / f"{name}.crt"


def make_leaf(d: Path, ca: str, domain: str, *, extra_names: Iterable[str] = (),
              stem: str = "leaf") -> tuple[Path, Path]:
    """A certificate for `domain` signed by the CA CA.crt/CA.key in `d`:
    STEM.crt and STEM.key. Its SAN is DNS:<domain> plus `extra_names`, and
    it serves as both a server and a client certificate (an s2s peer
    presents the same certificate when it connects out)."""
    names = ",".join(f"DNS:{n}" for n in (domain, *extra_names))
    (d / f"{stem}.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
        f"subjectAltName={names}\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-subj", f"/CN={domain}", "-keyout", f"{stem}.key",
            "-out", f"{stem}.csr", cwd=d)
    openssl("x509", "-req", "-in", f"{stem}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{stem}.ext",
            "-out", f"{stem}.crt", cwd=d)
    return d / f"{stem}.crt", d / f"{stem}.key"


class ThrowawayCA:
    """A CA in directory `d` (kept by the caller) that issues leaf
    certificates for test domains."""

    def __init__(self, d: Path, name: str = "ca"):
        self.dir = d
        self.name = name
        self.cert = make_ca(d, name)
        self.key = d / f"{name}.key"

    def issue(self, domain: str, *extra_names: str) -> tuple[Path, Path]:
        """(certificate, key) for `domain` (and `extra_names`), in the CA's
        directory as <domain>.crt and <domain>.key."""
        return make_leaf(self.dir, self.name, domain, extra_names=extra_names, stem=domain)
