"""One look at the endpoint before a run sends its prompts: is an OpenAI-compatible server there?

A wrong `base_url` (nothing listening, another kind of server on that port, a key the server
refuses) would otherwise fail every request after its retries, one warning per question, minutes
later. `GET <base_url>/models` (vLLM, TGI, `transformers serve`, llama.cpp and hosted APIs have
it) answers at once: a refused connection, an answer that is not HTTP and a refused key end the run
in one line naming the URL. An answer that is not JSON is only a doubt (a minimal server may lack
`/models`): the client then sends one request alone, and refuses the URL in one line if it fails.
A slow or failing (5xx, 429) server is let through: those are what the requests' retries are for.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.error
import urllib.request

from lamp_pl.served.settings import ServedError, ServedSettings

TIMEOUT_S = 10.0
MAX_BODY = 1 << 20


def _refuse(settings: ServedSettings, why: str) -> ServedError:
    return ServedError(f"model.served.base_url {settings.base_url}: {why}")


def check_endpoint(settings: ServedSettings) -> str | None:
    """Raise a `ServedError` naming `settings.base_url` when no OpenAI-compatible server answers there.

    Returns:
        None, or a doubt: what `GET /models` answered when that was not JSON.

    Raises:
        ServedError: nothing (or no HTTP server) listens there, or the server refuses the key.
    """
    url = settings.base_url.rstrip("/") + "/models"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {settings.api_key()}"})
    try:
        with urllib.request.urlopen(request, timeout=min(settings.timeout_s, TIMEOUT_S)) as response:
            status, body = response.status, response.read(MAX_BODY)
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read(MAX_BODY)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        reason = getattr(error, "reason", error)
        if isinstance(reason, TimeoutError | ssl.SSLError):
            # Slow, not absent: the requests wait and retry. A TLS failure here may be this look's
            # certificate store only (the client has its own): the requests decide.
            return None
        detail = " ".join(str(reason).split()) or type(reason).__name__
        raise _refuse(
            settings, f"no OpenAI-compatible server answers there ({detail}); start it or correct the URL"
        ) from None
    if status in (401, 403):
        fix = (
            f"check the key in ${settings.api_key_env}"
            if settings.api_key_env
            else "name the environment variable holding the key in model.served.api_key_env"
        )
        raise _refuse(settings, f"the server refused the API key (HTTP {status} on GET {url}); {fix}")
    if status >= 500 or status == 429 or len(body) >= MAX_BODY:
        return None
    try:
        json.loads(body)
    except ValueError:
        return f"GET {url} answered HTTP {status} and no JSON"
    return None
