"""REST: ``GET /gateway/bot`` and the Authorization header (errors never carry the token)."""
from __future__ import annotations

import aiohttp

from .errors import GatewayAuthError, GatewayError

__all__ = ["DEFAULT_API_URL", "fetch_gateway_bot"]

DEFAULT_API_URL = "https://discord.com/api/v10"


def _auth_header(token: str) -> str:
    return token if token.startswith("Bot ") else f"Bot {token}"


def _bare_token(token: str) -> str:
    return token[4:] if token.startswith("Bot ") else token


async def fetch_gateway_bot(http: aiohttp.ClientSession, api_url: str, token: str) -> dict:
    """GET ``{api_url}/gateway/bot``.  Errors never carry the token (only URL and status)."""
    url = api_url.rstrip("/") + "/gateway/bot"
    async with http.get(url, headers={"Authorization": _auth_header(token)}) as resp:
        if resp.status == 401:
            raise GatewayAuthError(f"GET {url}: 401 Unauthorized (bad token)")
        if resp.status >= 400:
            raise GatewayError(f"GET {url}: HTTP {resp.status} {resp.reason or ''}".rstrip())
        try:
            info = await resp.json(content_type=None)
        except ValueError as exc:
            raise GatewayError(f"GET {url}: the answer is not JSON ({exc})") from None
        if not isinstance(info, dict) or not isinstance(info.get("url"), str):
            raise GatewayError(f"GET {url}: the answer has no gateway url")
        return info
