"""The one safe HTTP fetcher for URLs we download: inbound Twilio media and any link a user supplies.

What makes it safe (SSRF):
- only http and https; no credentials inside the URL;
- the host is resolved once with ``socket.getaddrinfo`` and EVERY address it resolves to is checked:
  loopback, private, shared (CGNAT), link-local (cloud metadata 169.254.169.254), multicast, reserved and
  unspecified addresses are refused, for IPv4 and IPv6 alike, including IPv4-mapped (::ffff:127.0.0.1),
  NAT64 (64:ff9b::/96), 6to4 and Teredo forms. Numeric tricks (2130706433, 0x7f000001, 0177.0.0.1,
  127.1) are resolved by the same system call the connection would use, so they are caught as 127.0.0.1;
- the connection goes to the address that was checked, not to a second DNS answer (no DNS rebinding): the
  request URL carries the checked IP, with the original name in the Host header and as the TLS server name
  (certificates are still verified against the name);
- redirects are followed by hand (at most ``max_redirects``), and each hop gets all the checks again;
  credentials (``auth``) go only to the host they were given for, never to a host a redirect points at
  (Twilio redirects media to a signed storage URL that must not receive the account token);
- the body is streamed and abandoned as soon as it passes ``max_bytes`` (a declared Content-Length over the
  cap is refused before reading); ``timeout`` bounds each network operation and the whole download;
- environment proxies are ignored (a proxy would make the address checks meaningless).

``private_origin`` lets exactly one origin (scheme, host and port) through the address check: our own Twilio
sandbox on a private address (``settings.TWILIO_API_BASE_URL`` in sandbox configurations). Only a hop whose
URL is on that origin is let through; a redirect to any other origin, even another port of the same host
(where PostgreSQL or Redis listen), is checked like any link. The CALLER takes the origin from settings,
never from anything in the request. ``allow_private=True`` turns the check off for every hop: for tests
against a local server only.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass

import httpx

_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Certificate verification for https (httpx's ``verify``); tests swap in a context trusting their own CA.
TLS_VERIFY: ssl.SSLContext | bool = True


class FetchError(Exception):
    """A download that did not happen or was abandoned; ``message`` says why in plain words."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class FetchResult:
    content: bytes
    content_type: str | None  # the media type from the Content-Type header, parameters removed
    url: str  # the final URL, after redirects


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why we refuse to connect to this address (plain words), or None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # the connection really goes to the IPv4 address
            return forbidden_reason(ip.ipv4_mapped)
        embedded = ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = forbidden_reason(embedded)
            if reason:
                return reason
        if ip.teredo:
            return "a tunnelled (Teredo) address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "this server's own (loopback) address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private network address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "a non-public address"
    return None


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"Could not find the server {host!r} ({exc}).")
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise FetchError(f"Could not find the server {host!r}.")
    return addresses


def _check_url(url: httpx.URL) -> None:
    if url.scheme not in _DEFAULT_PORTS:
        raise FetchError(
            f"Only http and https links can be fetched; this one is {url.scheme or 'not a link'}."
        )
    if not url.host:
        raise FetchError("The link has no server name.")
    if url.userinfo:
        raise FetchError("Links with a user name or password inside them are not accepted.")


def _origin(url: str | None) -> httpx.URL | None:
    if not url:
        return None
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return None
    return parsed if parsed.scheme in _DEFAULT_PORTS and parsed.host else None


def _checked_addresses(url: httpx.URL, allow_private: bool) -> list[IPAddress]:
    addresses = _resolve(_host(url), url.port or _DEFAULT_PORTS[url.scheme])
    if not allow_private:
        for ip in addresses:
            reason = forbidden_reason(ip)
            if reason:
                raise FetchError(f"The link points to {reason} ({ip}), which is not allowed.")
    return addresses


def _host(url: httpx.URL) -> str:
    return url.raw_host.decode("ascii")  # IDNA-encoded, as DNS and the Host header want it


def _basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return (a.scheme, a.host, a.port or _DEFAULT_PORTS.get(a.scheme)) == (
        b.scheme,
        b.host,
        b.port or _DEFAULT_PORTS.get(b.scheme),
    )


def _megabytes(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 1_000_000 else f"{max(1, round(n / 1000))} KB"


def fetch(
    url: str,
    *,
    auth: tuple[str, str] | None = None,
    max_bytes: int,
    timeout: float,
    allow_private: bool = False,
    private_origin: str | None = None,
    max_redirects: int = 5,
) -> FetchResult:
    """Download ``url`` safely (see the module docstring); raise FetchError with a plain-words reason.

    ``private_origin``: the one origin (e.g. ``settings.TWILIO_API_BASE_URL``) allowed on a private address;
    each hop is let through only when its own URL is on exactly that origin."""
    try:
        current = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise FetchError(f"That is not a valid link ({exc}).")
    origin = current
    trusted = _origin(private_origin)
    _check_url(current)  # a link we would never fetch is refused before anything else

    with httpx.Client(trust_env=False, follow_redirects=False, timeout=timeout, verify=TLS_VERIFY) as client:
        # The clock starts once the client is built (loading the CA bundle is not the server's time).
        deadline = time.monotonic() + timeout
        for hop in range(max_redirects + 1):
            if hop and time.monotonic() > deadline:
                raise FetchError(f"Timed out after {timeout:g} s fetching {origin}.")
            _check_url(current)
            private_ok = allow_private or (trusted is not None and _same_origin(current, trusted))
            response = _connect(client, current, _checked_addresses(current, private_ok), auth, origin, timeout)
            try:
                if response.status_code in _REDIRECT_STATUSES:
                    location = response.headers.get("Location")
                    if not location:
                        raise FetchError(f"{current} redirected without saying where to.")
                    try:
                        current = current.join(location)
                    except httpx.InvalidURL as exc:
                        raise FetchError(f"{current} redirected to an invalid link ({exc}).")
                    continue
                if response.status_code >= 400:
                    raise FetchError(
                        f"The server answered {response.status_code} {response.reason_phrase} for {current}."
                    )
                return FetchResult(
                    content=_read_capped(response, current, max_bytes, deadline, timeout),
                    content_type=_media_type(response.headers.get("Content-Type")),
                    url=str(current),
                )
            finally:
                response.close()
    raise FetchError(f"Too many redirects (more than {max_redirects}) starting at {origin}.")


def _connect(
    client: httpx.Client,
    url: httpx.URL,
    addresses: list[IPAddress],
    auth: tuple[str, str] | None,
    origin: httpx.URL,
    timeout: float,
) -> httpx.Response:
    """Send the GET to one of the checked addresses (the next one when a connection is refused)."""
    host = _host(url)
    default_port = _DEFAULT_PORTS[url.scheme]
    bracketed = f"[{host}]" if ":" in host else host
    headers = {
        "Host": bracketed if url.port in (None, default_port) else f"{bracketed}:{url.port}",
        "Accept": "*/*",
        # Ask for the bytes as they are: a compressed body could inflate far past max_bytes in one chunk.
        "Accept-Encoding": "identity",
    }
    if auth is not None and _same_origin(url, origin):
        headers["Authorization"] = _basic_auth(*auth)
    last_error: Exception | None = None
    for ip in addresses:
        request = client.build_request(
            "GET",
            url.copy_with(host=str(ip)),
            headers=headers,
            extensions={"sni_hostname": host} if url.scheme == "https" else {},
        )
        try:
            return client.send(request, stream=True)
        except httpx.ConnectError as exc:
            last_error = exc
        except httpx.TimeoutException:
            raise FetchError(f"Timed out after {timeout:g} s fetching {url}.")
        except httpx.HTTPError as exc:
            raise FetchError(f"Could not fetch {url} ({exc}).")
    raise FetchError(f"Could not connect to {host} ({last_error}).")


def _read_capped(
    response: httpx.Response, url: httpx.URL, max_bytes: int, deadline: float, timeout: float
) -> bytes:
    too_big = f"The file at {url} is larger than the {_megabytes(max_bytes)} limit."
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(too_big)
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(too_big)
            if time.monotonic() > deadline:
                raise FetchError(f"Timed out after {timeout:g} s fetching {url}.")
            chunks.append(chunk)
    except httpx.TimeoutException:
        raise FetchError(f"Timed out after {timeout:g} s fetching {url}.")
    except httpx.HTTPError as exc:
        raise FetchError(f"The download from {url.host} broke off ({exc}).")
    return b"".join(chunks)


def _media_type(header: str | None) -> str | None:
    if not header:
        return None
    return header.split(";", 1)[0].strip().lower() or None
