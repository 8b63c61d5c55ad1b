"""A small PKI for the end-to-end tests, made with the `openssl` command line: CAs that sign
device certificates and CRLs, self-signed strangers, CSRs, and AWS's certificate ids and ARNs.
Also the registry calls that put them into a Ferrocore (boto3 `iot` client)."""

from __future__ import annotations

import hashlib
import os
import ssl
import subprocess
from pathlib import Path

from clients import uid

ACCOUNT = "000000000000"
REGION = "us-east-1"

LEAF_EXTENSIONS = (
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=clientAuth\n"
    "subjectKeyIdentifier=hash\n"
    "authorityKeyIdentifier=keyid\n"
)


def openssl(*args: str, cwd: Path) -> None:
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"openssl {' '.join(args)} failed:\n{p.stderr}"


def cert_id(pem: str) -> str:
    """AWS's certificateId: SHA-256 of the DER."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def cert_arn(cid: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{cid}"


def new_key_and_csr(cwd: Path, cn: str, key: Path, csr: Path) -> None:
    """An ECDSA P-256 key and a CSR for subject CN `cn`."""
    openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-subj", f"/CN={cn}", "-out", str(csr), cwd=cwd,
    )


def csr_pem(root: Path, cn: str) -> str:
    out = root / f"{uid('csr')}.csr"
    new_key_and_csr(root, cn, out.with_suffix(".key"), out)
    return out.read_text()


class Device:
    """A device's certificate and private key, as files (the key mode 0600)."""

    def __init__(self, root: Path, cert_pem: str, key_pem: str):
        self.dir = root / uid("dev")
        self.dir.mkdir(parents=True)
        self.cert = self.dir / "cert.pem"
        self.key = self.dir / "key.pem"
        self.cert.write_text(cert_pem)
        self.key.write_text(key_pem)
        os.chmod(self.key, 0o600)
        self.pem = cert_pem
        self.id = cert_id(cert_pem)


class Ca:
    """A self-signed ECDSA P-256 CA in its own directory, able to sign device certificates and
    CRLs. `key`: reuse another CA's key (two CAs with one subject and key)."""

    def __init__(self, root: Path, cn: str, key: Path | None = None):
        self.root = root
        self.dir = root / uid("ca")
        self.dir.mkdir(parents=True)
        self.key = key or self.dir / "ca.key"
        if key is None:
            openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(self.key), cwd=self.dir)
        self.cert = self.dir / "ca.pem"
        openssl(
            "req", "-x509", "-new", "-key", str(self.key), "-sha256", "-days", "3650",
            "-subj", f"/O=Ferrocore e2e/CN={cn}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash",
            "-out", str(self.cert), cwd=self.dir,
        )
        (self.dir / "leaf.cnf").write_text(LEAF_EXTENSIONS)
        (self.dir / "index.txt").write_text("")
        (self.dir / "crlnumber").write_text("01\n")
        (self.dir / "ca.cnf").write_text(
            "[ca]\ndefault_ca = d\n[d]\n"
            f"database = {self.dir / 'index.txt'}\ncrlnumber = {self.dir / 'crlnumber'}\n"
            "default_md = sha256\ndefault_crl_days = 7\n"
        )

    @property
    def pem(self) -> str:
        return self.cert.read_text()

    def _sign(self, csr: Path, out: Path) -> str:
        openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
            "-CAcreateserial", "-days", "365", "-sha256", "-extfile", str(self.dir / "leaf.cnf"),
            "-out", str(out), cwd=self.dir,
        )
        return out.read_text()

    def device(self, cn: str) -> Device:
        """A client certificate with subject CN `cn` signed by this CA, with its key."""
        name = uid("leaf")
        key, csr, out = (self.dir / f"{name}.{x}" for x in ("key", "csr", "pem"))
        new_key_and_csr(self.dir, cn, key, csr)
        return Device(self.root, self._sign(csr, out), key.read_text())

    def sign(self, cn: str) -> str:
        """The PEM of a client certificate with subject CN `cn` signed by this CA."""
        return self.device(cn).pem

    def crl(self, revoke: list[str | Device]) -> str:
        """A CRL of this CA listing the given certificates (PEMs or devices)."""
        for item in revoke:
            path = self.dir / f"{uid('revoke')}.pem"
            path.write_text(item.pem if isinstance(item, Device) else item)
            openssl(
                "ca", "-config", str(self.dir / "ca.cnf"), "-keyfile", str(self.key),
                "-cert", str(self.cert), "-revoke", str(path), cwd=self.dir,
            )
        out = self.dir / f"{uid('crl')}.pem"
        openssl(
            "ca", "-config", str(self.dir / "ca.cnf"), "-gencrl", "-keyfile", str(self.key),
            "-cert", str(self.cert), "-out", str(out), cwd=self.dir,
        )
        return out.read_text()


def self_signed(root: Path, cn: str) -> Device:
    """A certificate nobody registered, with its key."""
    d = root / uid("self")
    d.mkdir(parents=True)
    openssl(
        "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "key.pem", "-subj", f"/CN={cn}", "-days", "30", "-out", "cert.pem", cwd=d,
    )
    return Device(root, (d / "cert.pem").read_text(), (d / "key.pem").read_text())


def register_ca(iot, ca: Ca, **kwargs) -> str:
    """RegisterCACertificate with a verification certificate for the registration code;
    ACTIVE unless `setAsActive=False` is given."""
    kwargs.setdefault("setAsActive", True)
    code = iot.get_registration_code()["registrationCode"]
    out = iot.register_ca_certificate(caCertificate=ca.pem, verificationCertificate=ca.sign(code), **kwargs)
    return out["certificateId"]


def register_device(iot, ca: Ca, cn: str) -> Device:
    """A device certificate of `ca`, registered under it and ACTIVE."""
    d = ca.device(cn)
    out = iot.register_certificate(certificatePem=d.pem, caCertificatePem=ca.pem, setAsActive=True)
    assert out["certificateId"] == d.id
    return d


def api_device(iot, root: Path, active: bool = True) -> Device:
    """CreateKeysAndCertificate: Ferrocore makes the key pair and signs the certificate."""
    out = iot.create_keys_and_certificate(setAsActive=active)
    return Device(root, out["certificatePem"], out["keyPair"]["PrivateKey"])
