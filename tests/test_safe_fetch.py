"""The safe fetcher against a real local HTTP server: redirects, size caps, auth, and SSRF refusals."""

from __future__ import annotations

import base64
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.media import safe_fetch
from messaging.media.safe_fetch import FetchError, fetch, forbidden_reason

GOOD_AUTH = "Basic " + base64.b64encode(b"AC123:secret").decode()


@dataclass
class LocalServer:
    port: int
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


def _handler(server: LocalServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if "Content-Length" not in (headers or {}) and body is not None:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802 (http.server's naming)
            server.requests.append((self.path, dict(self.headers)))
            path = self.path
            if path == "/file":
                self._send(200, b"hello", {"Content-Type": "image/png; charset=binary"})
            elif path.startswith("/redirect/"):
                n = int(path.rsplit("/", 1)[1])
                self._send(302, headers={"Location": f"/redirect/{n - 1}" if n > 0 else "/file"})
            elif path == "/loop":
                self._send(302, headers={"Location": "/loop"})
            elif path == "/relative/start":
                self._send(301, headers={"Location": "../file"})
            elif path == "/no-location":
                self._send(302)
            elif path == "/big":
                self._send(200, b"x" * 10_000, {"Content-Type": "application/pdf"})
            elif path == "/stream-big":
                # No Content-Length: the body ends when the connection closes (HTTP/1.0).
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.end_headers()
                for _ in range(200):
                    self.wfile.write(b"y" * 1000)
            elif path == "/auth":
                if self.headers.get("Authorization") == GOOD_AUTH:
                    self._send(200, b"secret media", {"Content-Type": "image/jpeg"})
                else:
                    self._send(401, b"no")
            elif path == "/redirect-auth-same":
                self._send(307, headers={"Location": "/auth"})
            elif path == "/redirect-auth-other":
                self._send(307, headers={"Location": f"http://localhost:{server.port}/auth"})
            elif path == "/to-metadata":
                self._send(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
            elif path == "/to-loopback-alias":
                self._send(302, headers={"Location": f"http://127.0.0.2:{server.port}/file"})
            elif path.startswith("/to-port/"):
                port = int(path.rsplit("/", 1)[1])
                self._send(302, headers={"Location": f"http://127.0.0.1:{port}/file"})
            elif path == "/to-file-scheme":
                self._send(302, headers={"Location": "file:///etc/passwd"})
            elif path == "/stall":
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b"z")
                self.wfile.flush()
                server.release.wait(30)  # until the test is over: the client must give up first
            elif path == "/echo-host":
                self._send(200, self.headers.get("Host", "").encode(), {"Content-Type": "text/plain"})
            else:
                self._send(404, b"missing")

    return Handler


def _serve() -> Iterator[LocalServer]:
    state = LocalServer(port=0)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    yield from _serve()


@pytest.fixture
def internal_service() -> Iterator[LocalServer]:
    """Another service on loopback (where PostgreSQL or Redis would listen): nothing may reach it."""
    yield from _serve()


def _get(url: str, **kwargs):
    kwargs.setdefault("max_bytes", 1_000_000)
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("allow_private", True)
    return fetch(url, **kwargs)


# ---- fetching from our own sandbox (allow_private=True) --------------------------------------------------


def test_fetch_returns_bytes_media_type_and_final_url(local_server):
    result = _get(local_server.url("/file"))
    assert (result.content, result.content_type, result.url) == (
        b"hello",
        "image/png",
        local_server.url("/file"),
    )


def test_redirects_are_followed_to_the_final_url(local_server):
    result = _get(local_server.url("/redirect/4"))
    assert result.content == b"hello"
    assert result.url == local_server.url("/file")
    assert [path for path, _h in local_server.requests] == [f"/redirect/{n}" for n in (4, 3, 2, 1, 0)] + [
        "/file"
    ]


def test_relative_redirects_resolve_against_the_current_url(local_server):
    assert _get(local_server.url("/relative/start")).url == local_server.url("/file")


def test_more_than_five_redirects_are_refused(local_server):
    with pytest.raises(FetchError, match=r"Too many redirects \(more than 5\)"):
        _get(local_server.url("/redirect/5"))
    with pytest.raises(FetchError, match="Too many redirects"):
        _get(local_server.url("/loop"))


def test_a_redirect_without_location_is_an_error(local_server):
    with pytest.raises(FetchError, match="redirected without saying where to"):
        _get(local_server.url("/no-location"))


def test_error_statuses_are_reported_in_plain_words(local_server):
    with pytest.raises(FetchError, match=r"The server answered 404 Not Found for http://127.0.0.1:\d+/nope"):
        _get(local_server.url("/nope"))


def test_declared_length_over_the_cap_is_refused_before_reading(local_server):
    with pytest.raises(FetchError, match=r"/big is larger than the 5 KB limit"):
        _get(local_server.url("/big"), max_bytes=5_000)
    assert _get(local_server.url("/big"), max_bytes=10_000).content == b"x" * 10_000


def test_a_streamed_body_is_abandoned_past_the_cap(local_server):
    with pytest.raises(FetchError, match="larger than the 50 KB limit"):
        _get(local_server.url("/stream-big"), max_bytes=50_000)
    assert len(_get(local_server.url("/stream-big"), max_bytes=200_000).content) == 200_000


def test_basic_auth_is_sent_to_the_same_host_even_after_a_redirect(local_server):
    assert _get(local_server.url("/auth"), auth=("AC123", "secret")).content == b"secret media"
    assert _get(local_server.url("/redirect-auth-same"), auth=("AC123", "secret")).content == b"secret media"
    with pytest.raises(FetchError, match="401"):
        _get(local_server.url("/auth"), auth=("AC123", "wrong"))


def test_credentials_never_follow_a_redirect_to_another_host(local_server):
    with pytest.raises(FetchError, match="401"):
        _get(local_server.url("/redirect-auth-other"), auth=("AC123", "secret"))
    last_path, last_headers = local_server.requests[-1]
    assert last_path == "/auth"
    assert "Authorization" not in last_headers


def test_the_host_header_names_the_host_while_the_connection_goes_to_the_checked_ip(local_server):
    assert (
        _get(local_server.url("/echo-host", host="localhost")).content
        == f"localhost:{local_server.port}".encode()
    )


def test_a_stalled_download_times_out(local_server):
    with pytest.raises(FetchError, match="Timed out after 0.5 s"):
        _get(local_server.url("/stall"), timeout=0.5)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/a", "gopher://example.com/", "javascript:alert(1)", ""]
)
def test_only_http_and_https_are_fetched(url):
    with pytest.raises(FetchError, match="Only http and https|not a valid link|no server name"):
        fetch(url, max_bytes=1000, timeout=1, allow_private=True)


def test_a_redirect_to_another_scheme_is_refused(local_server):
    with pytest.raises(FetchError, match="Only http and https links can be fetched; this one is file"):
        _get(local_server.url("/to-file-scheme"))


def test_credentials_inside_the_url_are_refused(local_server):
    with pytest.raises(FetchError, match="user name or password"):
        _get(f"http://user:pw@127.0.0.1:{local_server.port}/file")


# ---- SSRF: private targets are refused when allow_private=False -----------------------------------------


@pytest.mark.parametrize(
    "path_host",
    [
        "127.0.0.1",
        "localhost",
        "2130706433",
        "0x7f000001",
        "017700000001",
        "127.1",
        "0",
        "[::1]",
        "[::ffff:127.0.0.1]",
    ],
)
def test_loopback_in_any_spelling_is_refused_without_connecting(local_server, path_host):
    with pytest.raises(FetchError, match="which is not allowed"):
        fetch(f"http://{path_host}:{local_server.port}/file", max_bytes=1000, timeout=2)
    assert local_server.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "https://[fd00::1]/",
        "http://[fe80::1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://224.0.0.1/",
    ],
)
def test_private_and_internal_targets_are_refused(url):
    with pytest.raises(FetchError, match="which is not allowed"):
        fetch(url, max_bytes=1000, timeout=2)


@pytest.fixture
def loopback_127_0_0_1_counts_as_public(monkeypatch):
    """Pretend the test server's address is public, to prove that every later hop is checked again."""
    real = forbidden_reason

    def patched(ip):
        return None if ip == ipaddress.ip_address("127.0.0.1") else real(ip)

    monkeypatch.setattr(safe_fetch, "forbidden_reason", patched)


@pytest.mark.usefixtures("loopback_127_0_0_1_counts_as_public")
def test_every_redirect_hop_is_checked_again(local_server):
    assert fetch(local_server.url("/redirect/1"), max_bytes=1000, timeout=2).content == b"hello"
    with pytest.raises(FetchError, match=r"link-local address \(169.254.169.254\), which is not allowed"):
        fetch(local_server.url("/to-metadata"), max_bytes=1000, timeout=2)
    with pytest.raises(FetchError, match=r"loopback\) address \(127.0.0.2\)"):
        fetch(local_server.url("/to-loopback-alias"), max_bytes=1000, timeout=2)


# ---- the sandbox's origin, and that origin only ------------------------------------------------------------


def test_the_sandbox_origin_is_allowed_but_never_a_redirect_to_another_loopback_port(
    local_server, internal_service
):
    sandbox = f"http://127.0.0.1:{local_server.port}/sandbox"  # TWILIO_API_BASE_URL in sandbox setups
    assert (
        fetch(local_server.url("/file"), max_bytes=1000, timeout=2, private_origin=sandbox).content
        == b"hello"
    )
    assert fetch(
        local_server.url("/redirect/2"), max_bytes=1000, timeout=2, private_origin=sandbox
    ).url.endswith("/file")
    with pytest.raises(FetchError, match=r"loopback\) address \(127.0.0.1\), which is not allowed"):
        fetch(
            local_server.url(f"/to-port/{internal_service.port}"),
            max_bytes=1000,
            timeout=2,
            private_origin=sandbox,
        )
    assert internal_service.requests == []


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:{port}",  # the same address under another name is another origin
        "https://127.0.0.1:{port}",  # another scheme
        "http://127.0.0.1:{other}",  # another port
        "http://127.0.0.1",
        "",
        "not a link",
    ],
)
def test_a_private_address_off_the_sandbox_origin_is_refused(local_server, origin):
    trusted = origin.format(port=local_server.port, other=local_server.port + 1)
    with pytest.raises(FetchError, match="which is not allowed"):
        fetch(local_server.url("/file"), max_bytes=1000, timeout=2, private_origin=trusted)
    assert local_server.requests == []


@pytest.mark.django_db
def test_inbound_media_redirected_through_the_sandbox_never_reaches_another_loopback_service(
    client, org_a, local_server, internal_service, settings, django_capture_on_commit_callbacks, monkeypatch
):
    from messaging.models import Message
    from quicksend.celery import app
    from tests.receive_helpers import Line, post_inbound

    monkeypatch.setattr(app.conf, "task_always_eager", True)
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{local_server.port}"
    line = Line(org_a)
    params = line.inbound(
        "+12025550111",
        "",
        NumMedia="2",
        MediaUrl0=local_server.url("/file"),
        MediaContentType0="image/png",
        MediaUrl1=local_server.url(f"/to-port/{internal_service.port}"),
        MediaContentType1="image/png",
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert post_inbound(client, line.token, params).status_code == 200
    media = list(Message.objects.get(sid=params["MessageSid"]).media.order_by("pk"))
    assert [(m.size, m.error) for m in media][0] == (5, "")
    assert "loopback" in media[1].error and not media[1].file
    assert internal_service.requests == []


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("10.1.2.3", True),
        ("172.31.255.255", True),
        ("192.168.0.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("0.0.0.0", True),
        ("224.0.0.251", True),
        ("255.255.255.255", True),
        ("240.0.0.1", True),
        ("192.0.2.1", True),
        ("::", True),
        ("::1", True),
        ("fe80::1", True),
        ("fc00::1", True),
        ("ff02::1", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:169.254.169.254", True),
        ("64:ff9b::7f00:1", True),
        ("2002:7f00:1::1", True),  # 6to4 wrapping 127.0.0.1
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", True),  # Teredo
        ("2001:db8::1", True),
        ("8.8.8.8", False),
        ("93.184.216.34", False),
        ("::ffff:8.8.8.8", False),
        ("2606:4700:4700::1111", False),
    ],
)
def test_address_classification(address, refused):
    assert (forbidden_reason(ipaddress.ip_address(address)) is not None) is refused


# ---- https: pinning the IP keeps certificate checks on the host name ------------------------------------


def _self_signed(tmp_path):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path, monkeypatch) -> Iterator[LocalServer]:
    cert_path, key_path = _self_signed(tmp_path)
    state = LocalServer(port=0)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_path, key_path)
    httpd.socket = server_ctx.wrap_socket(httpd.socket, server_side=True)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setattr(safe_fetch, "TLS_VERIFY", ssl.create_default_context(cafile=str(cert_path)))
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()


def test_https_verifies_the_certificate_against_the_host_name_not_the_ip(tls_server):
    result = fetch(f"https://localhost:{tls_server.port}/file", max_bytes=1000, timeout=5, allow_private=True)
    assert result.content == b"hello"
    # The certificate names "localhost" only: asking for the IP must fail verification.
    with pytest.raises(FetchError, match="Could not"):
        fetch(f"https://127.0.0.1:{tls_server.port}/file", max_bytes=1000, timeout=5, allow_private=True)


def test_https_refuses_an_untrusted_certificate(tls_server, monkeypatch):
    monkeypatch.setattr(safe_fetch, "TLS_VERIFY", True)
    with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        fetch(f"https://localhost:{tls_server.port}/file", max_bytes=1000, timeout=5, allow_private=True)


_private_v4 = st.one_of(
    *(
        st.ip_addresses(v=4, network=net)
        for net in (
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "100.64.0.0/10",
        )
    )
)


@given(_private_v4)
def test_every_private_ipv4_is_refused_in_every_ipv6_wrapping(ip):
    assert forbidden_reason(ip)
    assert forbidden_reason(ipaddress.IPv6Address(f"::ffff:{ip}"))  # IPv4-mapped
    assert forbidden_reason(ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(ip)))  # NAT64
    assert forbidden_reason(ipaddress.IPv6Address((0x2002 << 112) | (int(ip) << 80)))  # 6to4
