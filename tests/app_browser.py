"""Drive `rsacfn app`'s page in headless Chromium: upload a clip, type its transcript, press Recognise, read the page.

    python tests/app_browser.py [PNG]     (default: nbs/images/app.png)

draws the screenshot of the page after a prediction, for a tiny untrained model with valence and arousal (the page's
mechanics, not a model to believe). Uses Debian's chromium and chromedriver (`apt-get install -y chromium
chromium-driver`) through selenium, as tests/lab_screenshot.py does; exits 0 with a message when they are absent."""
import contextlib, io, json, shutil, sys, tempfile, time
from pathlib import Path

CHROMIUM, DRIVER = shutil.which('chromium'), shutil.which('chromedriver')
REPO = Path(__file__).resolve().parents[1]


def chrome(width:int=1300, height:int=1500):
    "Headless Chromium that logs every request it makes (`requested`)."
    from selenium import webdriver
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', f'--window-size={width},{height}',
              '--hide-scrollbars'): opts.add_argument(a)
    opts.set_capability('goog:loggingPrefs', {'performance': 'ALL'})
    return webdriver.Chrome(options=opts, service=webdriver.ChromeService(DRIVER))


def requested(driver) -> set:
    "The address of every request the page made so far (blob: and data: ones included)."
    out = set()
    for e in driver.get_log('performance'):
        m = json.loads(e['message'])['message']
        if m['method'] == 'Network.requestWillBeSent': out.add(m['params']['request']['url'])
    return out


def recognise(driver, url:str, wav=None, text=None, timeout:float=60) -> str:
    "Open the page, give it the clip and/or transcript, press Recognise; the emotion it shows (its fonts loaded)."
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    wait = WebDriverWait(driver, timeout)
    driver.get(url)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#recognise'))
    if wav is not None:
        driver.find_element(By.CSS_SELECTOR, '#clip input[type=file]').send_keys(str(Path(wav).resolve()))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#clip audio, #clip [data-testid=waveform-controls]'))
    if text is not None: driver.find_element(By.CSS_SELECTOR, '#transcript textarea').send_keys(text)
    driver.find_element(By.CSS_SELECTOR, '#recognise').click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#why img'))
    wait.until(lambda d: d.execute_script("return document.fonts.status == 'loaded'"))
    return driver.find_element(By.CSS_SELECTOR, '#emotion [data-testid=label-output-value]').text


def screenshot(png:Path=REPO/'nbs'/'images'/'app.png') -> Path:
    "The page after a prediction, for a tiny model with valence and arousal, saved to `png`."
    sys.path.insert(0, str(REPO/'tests'))
    from run_notebooks import palette_png
    from rsacfn.app import build_app, serve
    from rsacfn.data.demo import make_demo_corpus
    from rsacfn.data.readers import read_corpus
    from rsacfn.models.multimodal import MultiModel
    from rsacfn.models.tiny import tiny_backbones
    from rsacfn.recognizer import EmotionRecognizer
    with tempfile.TemporaryDirectory() as d:
        clip = read_corpus(make_demo_corpus(Path(d)/'KEMDy20_v1_1', size='tiny', progress=False)).iloc[0]
        bb = tiny_backbones(pretrain_clips=0, progress=False)
        MultiModel.from_backbones('early_fusion', bb['audio'], bb['text'], audio_max_lens=32_000, text_max_lens=64,
                                  dimensions=['valence', 'arousal']).save_pretrained(Path(d)/'runs'/'demo'/'best')
        rec = EmotionRecognizer.from_pretrained(Path(d)/'runs'/'demo'/'best', device='cpu')
        page = build_app(rec, 'runs/demo/best')
        from rsacfn.commands.app import free_port
        url, driver = serve(page, free_port()), chrome()
        try:
            shown = recognise(driver, url, clip.wav_path, clip.text)
            time.sleep(1)
            png.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(png))
            png.write_bytes(palette_png(png.read_bytes()))
            outside = sorted(u for u in requested(driver) if not u.startswith(('http://127.0.0.1', 'blob:', 'data:')))
        finally:
            driver.quit()
            with contextlib.redirect_stdout(io.StringIO()): page.close()  # Gradio's own line
    print(f'{png}: the page shows {shown}; requests outside 127.0.0.1: {outside or "none"}')
    return png


if __name__ == '__main__':
    if not (CHROMIUM and DRIVER):
        print('chromium and chromedriver are not installed (Debian: apt-get install -y chromium chromium-driver): '
              'nothing to do'); sys.exit(0)
    screenshot(*([Path(sys.argv[1])] if len(sys.argv) > 1 else []))
