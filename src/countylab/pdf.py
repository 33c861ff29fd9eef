"""HTML to PDF for the documents the lab prints: agreements (授权协议) and briefs (汇报材料).

WeasyPrint lays the page out (A4, CSS paged media) and embeds the subset of the Chinese font
it uses, found through fontconfig (``fonts-noto-cjk``, installed by ``scripts/system-deps.sh``
and checked by ``countylab doctor``).  A document is built from our own templates, but the text
in it (a scenario's title, a team member's name) comes from users: the URL fetcher therefore
refuses every URL except ``data:`` and the named ``assets`` the caller hands in, so a document
cannot make the server read a file or reach the network.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from countylab.errors import UserError

#: the font stack of every printed page: Noto CJK first (the lab's own install), then common ones
FONT_STACK = (
    '"Noto Sans CJK SC", "Noto Serif CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", sans-serif'
)

BASE_CSS = f"""
@page {{
  size: A4;
  margin: 22mm 18mm 20mm 18mm;
  @bottom-center {{
    content: "第 " counter(page) " 页 / 共 " counter(pages) " 页"; font-size: 9pt; color: #666;
  }}
}}
html {{ font-family: {FONT_STACK}; font-size: 10.5pt; line-height: 1.6; color: #111; }}
h1 {{ font-size: 18pt; text-align: center; margin: 0 0 8mm; }}
h2 {{ font-size: 13pt; margin: 6mm 0 2mm; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 0.5pt solid #888; padding: 1.5mm 2mm; text-align: left; vertical-align: top; }}
img, svg {{ max-width: 100%; }}
"""

ASSET_SCHEME = "asset:"


def render_pdf(
    html: str,
    *,
    assets: Mapping[str, tuple[bytes, str]] | None = None,
    stylesheet: str = "",
) -> bytes:
    """The PDF of ``html``; ``assets`` maps names used as ``asset:<name>`` in the HTML (an image
    of a chart) to ``(bytes, mime type)``.  ``stylesheet`` is added after :data:`BASE_CSS`."""
    import weasyprint  # ~0.5 s to import: only when a document is printed
    from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

    named = dict(assets or {})

    class _Refused(FatalURLFetchingError):  # type: ignore[misc]
        pass

    class _Fetcher(URLFetcher):  # type: ignore[misc]
        """``asset:<name>`` from ``assets`` and ``data:`` URLs; anything else stops the print."""

        def fetch(self, url: str, headers: Any = None) -> Any:
            if url.startswith(ASSET_SCHEME) and url[len(ASSET_SCHEME) :] in named:
                data, mime = named[url[len(ASSET_SCHEME) :]]
                return URLFetcherResponse(url, body=data, headers={"Content-Type": mime})
            if url.startswith("data:"):
                return super().fetch(url, headers)
            raise _Refused(url)

    fetcher = _Fetcher(allowed_protocols=("data",), fail_on_errors=True)
    try:
        css = [weasyprint.CSS(string=BASE_CSS + stylesheet, url_fetcher=fetcher)]
        document = weasyprint.HTML(string=html, url_fetcher=fetcher, base_url="asset:")
        out = io.BytesIO()
        document.write_pdf(out, stylesheets=css)
    except _Refused as refused:
        url = str(refused)[:80]
        raise UserError(
            f"打印的文档不能引用外部资源：{url}",
            f"A printed document may not refer to outside resources: {url}",
        ) from None
    return out.getvalue()
