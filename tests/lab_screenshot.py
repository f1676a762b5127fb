"""Open JupyterLab in headless Chromium, save a notebook as opened, Run All, and take a screenshot.

    python tests/lab_screenshot.py [NOTEBOOK] [PNG]     (defaults: 30_evaluation/35_figures.ipynb, nbs/images/lab.png)

Uses Debian's chromium and chromedriver (`apt-get install -y chromium chromium-driver`) through selenium; exits 0 with
a message when they are absent. The server runs on loopback over a scratch copy of the notebook (tests/lab.py), so
the repository is not touched. Checks on the way: the notebook saved right after opening is byte-identical to the
committed one (the nbdev save hook), and Run All finishes with no error output."""
import shutil, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from lab import REPO, lab_server, scratch_copy
from run_notebooks import palette_png

CHROMIUM, DRIVER = shutil.which('chromium'), shutil.which('chromedriver')

def screenshot(name:str='30_evaluation/35_figures.ipynb', png:Path=REPO/'nbs'/'images'/'lab.png', timeout:float=600) -> Path:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1500,1000', '--hide-scrollbars'): opts.add_argument(a)
    with tempfile.TemporaryDirectory() as d, lab_server(scratch_copy(Path(d), [name])) as lab:  # started as `make lab` starts it
        path = Path(d)/'nbs'/name
        committed = path.read_bytes()
        driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(DRIVER))
        try:
            wait = WebDriverWait(driver, timeout)
            def menu(top, item):  # Lab's menus, clicked: works on any server, `make lab`'s included (no window.jupyterapp)
                bar = f"//li[contains(@class,'lm-MenuBar-item')][.//div[normalize-space()='{top}']]"
                wait.until(lambda d: d.find_elements(By.XPATH, bar))[0].click()
                entry = f"//li[contains(@class,'lm-Menu-item')][.//div[contains(@class,'lm-Menu-itemLabel') and normalize-space()='{item}']]"
                wait.until(lambda d: [e for e in d.find_elements(By.XPATH, entry) if e.is_displayed()])[0].click()
            def save():
                driver.find_element(By.CSS_SELECTOR, '.jp-NotebookPanel .jp-Cell').click()
                ActionChains(driver).key_down(Keys.CONTROL).send_keys('s').key_up(Keys.CONTROL).perform()
            driver.get(f'{lab.url}/lab/tree/{name}?token={lab.token}')
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '.jp-NotebookPanel .jp-Cell'))
            wait.until(lambda d: 'Idle' in d.find_element(By.CSS_SELECTOR, '.jp-StatusBar-Widget, #jp-main-statusbar').text)
            save()  # as a user saves: Ctrl+S in the notebook
            time.sleep(2)
            if path.read_bytes() != committed: raise AssertionError(f'saving {name} as opened changed it: is the nbdev save hook installed (make install)?')
            driver.set_script_timeout(timeout)
            t0 = time.time()
            menu('Run', 'Run All Cells')
            wait.until(lambda d: time.time() - t0 > 3 and not [p for p in d.find_elements(By.CSS_SELECTOR, '.jp-InputArea-prompt') if '*' in p.text]
                       and 'Idle' in d.find_element(By.CSS_SELECTOR, '#jp-main-statusbar').text)
            errors = driver.find_elements(By.CSS_SELECTOR, '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"] .jp-RenderedText pre')
            tracebacks = [e.text for e in driver.find_elements(By.CSS_SELECTOR, '.jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]')]
            if tracebacks: raise AssertionError(f'Run All failed in JupyterLab: {tracebacks[0][:500]}')
            figures = driver.find_elements(By.CSS_SELECTOR, '.jp-OutputArea-output img')
            target = figures[0] if figures else driver.find_elements(By.CSS_SELECTOR, '.jp-OutputArea-output')[-1]
            for no in driver.find_elements(By.XPATH, "//div[contains(@class,'Toastify')]//button[normalize-space()='No']"): no.click()  # Lab's news question
            driver.execute_script('arguments[0].scrollIntoView({block: "start"})', target)
            time.sleep(1)
            png.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(png))
            png.write_bytes(palette_png(png.read_bytes()))
            ran = len([p for p in driver.find_elements(By.CSS_SELECTOR, '.jp-InputArea-prompt') if p.text.strip().startswith('[') and p.text.strip() != '[ ]:'])
            print(f'{name}: Run All finished in {time.time() - t0:.0f} s, {ran} cells ran, {len(figures)} figures, {len(errors)} stderr outputs -> {png}')
        finally: driver.quit()
    return png

if __name__ == '__main__':
    if not (CHROMIUM and DRIVER):
        print('chromium and chromedriver are not installed (Debian: apt-get install -y chromium chromium-driver): nothing to do'); sys.exit(0)
    args = sys.argv[1:]
    screenshot(*([args[0]] if args else []), *([Path(args[1])] if len(args) > 1 else []))
