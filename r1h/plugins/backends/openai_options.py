"""The ``--backend-arg``s of the openai backend (see ``openai.py`` and docs/openai-backend.md for what each does)."""

from __future__ import annotations

import dataclasses

from r1h.harness.core.options import Options, option


@dataclasses.dataclass
class OpenAIOptions(Options):
    """``--backend-arg``s of the openai backend."""

    base_url: str | None = option(None, "server(s), comma-separated (same as --base-url; default $OPENAI_BASE_URL)")
    api_key: str | None = option(None, "bearer token (default $OPENAI_API_KEY, else EMPTY)")
    concurrency: int = option(256, "requests in flight per replica", ge=1)
    max_retries: int = option(5, "retries of a failed request (429, 5xx, connection errors)", ge=0)
    retry_backoff: float = option(1.0, "first retry delay in seconds, doubled each retry (Retry-After honoured)",
                                  ge=0)
    timeout: float | None = option(None, "seconds for one try, connect to last byte (default: deadline)", gt=0)
    deadline: float = option(3600.0, "seconds for one request overall, retries included", gt=0)
    max_body_mb: float = option(16.0, "cap on a response body in MB, after gzip/deflate decoding", gt=0)
    use_n: bool = option(False, "one request per problem with n = samples wanted (first sample's seed)")
    prefill_keys: bool = option(True, "send continue_final_message/add_generation_prompt for a prefill")
    ca_bundle: str | None = option(None, "PEM file of CA certificates to trust for https:// servers")
    verify: bool = option(True, "check TLS certificates (false: a self-signed test box)")
