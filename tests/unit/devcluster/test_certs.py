"""The PKI: a CA that signs the apiserver's serving cert and the clients' certs."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID
from pitstop.devcluster import certs


def test_generated_pki_is_complete_and_signed_by_its_ca(tmp_path: Path) -> None:
    pki = certs.generate(tmp_path, service_ip="10.0.0.1")

    assert pki.exists()
    ca = x509.load_pem_x509_certificate(pki.ca.cert.read_bytes())
    serving = x509.load_pem_x509_certificate(pki.apiserver.cert.read_bytes())
    serving.verify_directly_issued_by(ca)
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address("10.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)


def test_admin_is_in_system_masters(tmp_path: Path) -> None:
    pki = certs.generate(tmp_path, service_ip="10.0.0.1")

    admin = x509.load_pem_x509_certificate(pki.admin.cert.read_bytes())
    groups = admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert [g.value for g in groups] == ["system:masters"]
    assert oct(pki.admin.key.stat().st_mode & 0o777) == "0o600"
