"""Key material of the local control plane: a CA, serving and client certificates, SA keys.

This module owns the PKI a real cluster would get from kubeadm, reduced to what a
single-host control plane needs: one CA that signs the apiserver's serving certificate
(for 127.0.0.1 / localhost and the in-cluster `kubernetes` service names) and the client
certificates of the admin, the controller-manager and the scheduler; plus the key pair
the apiserver signs service-account tokens with. It writes PEM files and nothing else.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Long enough for a developer's cluster to outlive any session; nothing rotates them.
_VALIDITY = datetime.timedelta(days=365)


@dataclasses.dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


@dataclasses.dataclass(frozen=True)
class Pki:
    """Paths of every PEM file the control plane reads."""

    ca: KeyPair
    apiserver: KeyPair
    admin: KeyPair
    controller_manager: KeyPair
    scheduler: KeyPair
    service_account_key: Path
    service_account_pub: Path

    @classmethod
    def at(cls, directory: Path) -> Pki:
        def pair(name: str) -> KeyPair:
            return KeyPair(directory / f"{name}.crt", directory / f"{name}.key")

        return cls(
            ca=pair("ca"),
            apiserver=pair("apiserver"),
            admin=pair("admin"),
            controller_manager=pair("controller-manager"),
            scheduler=pair("scheduler"),
            service_account_key=directory / "sa.key",
            service_account_pub=directory / "sa.pub",
        )

    def exists(self) -> bool:
        files = [self.service_account_key, self.service_account_pub]
        for kp in (self.ca, self.apiserver, self.admin, self.controller_manager, self.scheduler):
            files += [kp.cert, kp.key]
        return all(f.is_file() for f in files)


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256 keys are generated in microseconds, unlike RSA; every component accepts them.
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        # Backdated a little: the processes start within the same second.
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


def _issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    subject: x509.Name,
    *,
    server_names: tuple[str, ...] = (),
    server_ips: tuple[str, ...] = (),
    client: bool = False,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _new_key()
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH]
    builder = (
        _builder(subject, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if server_names or server_ips:
        alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in server_names]
        alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def generate(directory: Path, *, service_ip: str, extra_ips: tuple[str, ...] = ()) -> Pki:
    """Write a fresh PKI into `directory`; `service_ip` is the `kubernetes` Service's IP,
    `extra_ips` more addresses the apiserver serves on (a real node's bridge)."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki.at(directory)

    ca_key = _new_key()
    ca_subject = _name("pitstop-dev-ca")
    ca_cert = (
        _builder(ca_subject, ca_subject, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(pki.ca.key, ca_key)
    _write_cert(pki.ca.cert, ca_cert)

    issued = {
        pki.apiserver: _issue(
            ca_key,
            ca_cert,
            _name("kube-apiserver"),
            server_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            server_ips=("127.0.0.1", service_ip, *extra_ips),
        ),
        # `system:masters` bypasses RBAC: the admin of a throwaway cluster.
        pki.admin: _issue(ca_key, ca_cert, _name("pitstop-admin", "system:masters"), client=True),
        # The two controllers get the identities the bootstrap RBAC policy grants roles to.
        pki.controller_manager: _issue(
            ca_key, ca_cert, _name("system:kube-controller-manager"), client=True
        ),
        pki.scheduler: _issue(ca_key, ca_cert, _name("system:kube-scheduler"), client=True),
    }
    for pair, (key, cert) in issued.items():
        _write_key(pair.key, key)
        _write_cert(pair.cert, cert)

    # Service-account tokens are signed with RSA (RS256), the algorithm every
    # consumer of projected tokens is guaranteed to accept.
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(pki.service_account_key, sa_key)
    pki.service_account_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


def issue(
    directory: Path,
    name: str,
    *,
    common_name: str,
    organization: str | None = None,
    server_ips: tuple[str, ...] = (),
    client: bool = False,
) -> KeyPair:
    """Sign one more pair `<name>.crt/.key` with the CA in `directory` (a real node's
    kubelet, kube-proxy, the apiserver's client for kubelets)."""
    pki = Pki.at(directory)
    ca_key = serialization.load_pem_private_key(pki.ca.key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(pki.ca.cert.read_bytes())
    key, cert = _issue(
        ca_key, ca_cert, _name(common_name, organization), server_ips=server_ips, client=client
    )
    pair = KeyPair(directory / f"{name}.crt", directory / f"{name}.key")
    _write_key(pair.key, key)
    _write_cert(pair.cert, cert)
    return pair
