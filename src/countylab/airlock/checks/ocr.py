"""OCR adapter: Tesseract, when installed, reads the text drawn into a chart.

The images check takes any :class:`~countylab.airlock.checks.base.OcrEngine`; this is the one
the lab builds when ``tesseract`` is on the machine (``apt-get install tesseract-ocr
tesseract-ocr-chi-sim``).  Without it, raster images are marked "needs human eyes".
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from countylab.errors import BugError


@dataclass(frozen=True)
class TesseractOcr:
    binary: str
    languages: str = "chi_sim+eng"
    timeout_s: float = 60.0

    def __call__(self, image_png: bytes) -> str:
        with tempfile.TemporaryDirectory(prefix="countylab-ocr-") as tmp:
            image = Path(tmp) / "image.png"
            image.write_bytes(image_png)
            try:
                done = subprocess.run(
                    [self.binary, str(image), "stdout", "-l", self.languages],
                    capture_output=True,
                    timeout=self.timeout_s,
                    check=False,
                    env={},
                )
            except subprocess.TimeoutExpired as exc:
                raise BugError("文字识别超时", "OCR timed out") from exc
            if done.returncode != 0:
                raise BugError(
                    "文字识别失败", f"tesseract failed: {done.stderr.decode(errors='replace')[:200]}"
                )
            return done.stdout.decode("utf-8", errors="replace")


def find_tesseract(languages: str = "chi_sim+eng") -> TesseractOcr | None:
    """A Tesseract engine when the binary and all ``languages`` are installed, else None."""
    binary = shutil.which("tesseract")
    if binary is None:
        return None
    listed = subprocess.run([binary, "--list-langs"], capture_output=True, timeout=30, check=False, env={})
    have = set(listed.stdout.decode(errors="replace").split())
    if not set(languages.split("+")) <= have:
        return None
    return TesseractOcr(binary, languages)
