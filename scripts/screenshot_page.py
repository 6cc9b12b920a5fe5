"""Screenshot of the btdnet-serve page after a prediction, for the documentation.

Serves a checkpoint on 127.0.0.1, opens the page in headless Chromium, uploads the image,
types the expressions, waits for the answer and saves a PNG of the page.

    python scripts/screenshot_page.py --checkpoint runs/demo/train/checkpoints/best \\
        --image runs/demo/data/images/rrsisd/JPEGImages/00851.jpg \\
        --text "The red tennis court located on the left side" --text "The green storage tank" \\
        --out docs/images/serve_page.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder or Hub repo id")
    parser.add_argument("--image", type=Path, required=True, help="image to upload")
    parser.add_argument("--text", action="append", required=True, help="expression (repeat)")
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args(argv)
    if args.out.exists():
        print(f"screenshot_page: {args.out} exists; not overwriting it", file=sys.stderr)
        return 2

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from btdnet.predict.predictor import Predictor
    from btdnet.serve.app import create_app
    from btdnet.serve.browser import headless_chromium
    from btdnet.serve.local import serve_in_thread
    from btdnet.serve.service import InferenceService

    predictor = Predictor.from_pretrained(args.checkpoint, device="cpu")
    info = {
        "checkpoint": str(args.checkpoint),
        "variant": getattr(predictor.model.config, "variant", None),
        "image_size": predictor.input_side,
    }
    service = InferenceService(predictor, info=info)
    with tempfile.TemporaryDirectory() as profile, serve_in_thread(create_app(service)) as url:
        driver = headless_chromium(profile, width=args.width, height=args.height)
        try:
            driver.get(url + "/")
            wait = WebDriverWait(driver, 120)
            wait.until(lambda d: "model" in d.find_element(By.ID, "model").text)
            driver.find_element(By.ID, "image").send_keys(str(args.image.resolve()))
            driver.find_element(By.ID, "texts").send_keys("\n".join(args.text))
            driver.find_element(By.ID, "submit").click()
            wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("done"))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.out))
        finally:
            driver.quit()
    service.close()
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
