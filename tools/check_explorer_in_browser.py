"""Check notebook 06's widget explorer in a real browser: JupyterLab + headless Chromium.

    apt-get install chromium chromium-driver && pip install "selenium<4.40"
    python tools/check_explorer_in_browser.py --out _output/browser

Starts JupyterLab on notebooks/ (a live kernel, so the explorer shows widgets, not the static grid),
runs every cell of 06_guidance_and_latents.ipynb, screenshots the explorer, types a new prompt, waits
for the image to regenerate, and screenshots again. Exits non-zero if the widgets never render.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "_output" / "browser")
    ap.add_argument("--jupyter", default=str(REPO / ".venv" / "bin" / "jupyter"))
    ap.add_argument("--timeout", type=float, default=240)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    port, token = free_port(), "course-check"
    env = {k: v for k, v in os.environ.items() if k != "COURSE_STATIC"}  # a live kernel
    env["HF_HUB_OFFLINE"] = "1"
    lab = subprocess.Popen(
        [args.jupyter, "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1", "--allow-root",
         f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True",
         f"--ServerApp.root_dir={REPO / 'notebooks'}"],
        stdout=open(args.out / "jupyterlab.log", "w"), stderr=subprocess.STDOUT, env=env)
    opts = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts)
    try:
        deadline = time.time() + args.timeout
        url = f"http://127.0.0.1:{port}/lab/tree/06_guidance_and_latents.ipynb?token={token}"
        while True:
            try:
                driver.get(url)
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(2)
        while not driver.execute_script("return !!(window.jupyterapp && document.querySelector('.jp-Notebook'))"):
            if time.time() > deadline:
                raise TimeoutError("JupyterLab did not open the notebook")
            time.sleep(1)
        time.sleep(5)  # let the kernel start
        driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        t_run = time.time()
        while not driver.find_elements(By.CSS_SELECTOR, ".widget-text input"):
            if time.time() > deadline:
                driver.save_screenshot(str(args.out / "explorer-timeout.png"))
                raise TimeoutError("the explorer's widgets never appeared")
            time.sleep(1)
        print(f"widgets rendered {time.time() - t_run:.0f} s after Run All")
        box = driver.find_element(By.CSS_SELECTOR, ".widget-text input")
        explorer = box.find_element(By.XPATH, "./ancestor::div[contains(@class,'jp-OutputArea-output')]")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", explorer)
        time.sleep(2)
        explorer.screenshot(str(args.out / "explorer-cat-face.png"))
        status = explorer.find_elements(By.CSS_SELECTOR, ".widget-label")
        before = status[-1].text if status else ""
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys("red heart", Keys.ENTER)
        t0 = time.time()
        while time.time() - t0 < 60:
            labels = explorer.find_elements(By.CSS_SELECTOR, ".widget-label")
            imgs = explorer.find_elements(By.CSS_SELECTOR, "img")
            if labels and imgs and labels[-1].text and labels[-1].text != before or time.time() - t0 > 20:
                break
            time.sleep(0.5)
        time.sleep(1)
        explorer.screenshot(str(args.out / "explorer-red-heart.png"))
        labels = explorer.find_elements(By.CSS_SELECTOR, ".widget-label")
        images = explorer.find_elements(By.CSS_SELECTOR, "img")
        print("status after typing a new prompt:", labels[-1].text if labels else "(none)")
        print("images in the explorer:", len(images))
        print("screenshots:", sorted(p.name for p in args.out.glob("explorer-*.png")))
        return 0 if images and labels and "generated in" in labels[-1].text else 1
    finally:
        driver.quit()
        lab.terminate()
        lab.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
