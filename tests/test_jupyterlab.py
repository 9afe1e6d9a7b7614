"""JupyterLab itself, driven as a person would: open Experiment 1 in quick mode, run all, change a widget, press Train,
and see the new run directory and its plot appear. Headless Chromium speaks the DevTools protocol to a real JupyterLab."""
import asyncio, itertools, json, os, shutil, socket, subprocess, time, urllib.request
from pathlib import Path

import pytest
from conftest import BIN, CHROMIUM, ROOT, needs_chromium

pytestmark = needs_chromium


def free_port():
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def wait_for(what, check, timeout):
    "Poll `check` until it returns something true; fail naming `what` after `timeout` seconds."
    end = time.time() + timeout
    while time.time() < end:
        value = check()
        if value: return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


class Page:
    "A page of headless Chromium, through the DevTools protocol (tornado's websocket client: no extra package)."
    def __init__(self, ws_url):
        from tornado.websocket import websocket_connect
        self.loop = asyncio.new_event_loop()
        async def connect(): return await websocket_connect(ws_url, max_message_size=1 << 26)
        self.ws = self.loop.run_until_complete(connect())
        self.ids, self.errors = itertools.count(1), []

    def send(self, method, **params):
        async def call():
            i = next(self.ids)
            await self.ws.write_message(json.dumps(dict(id=i, method=method, params=params)))
            while True:
                msg = json.loads(await self.ws.read_message())
                if msg.get("method") == "Runtime.exceptionThrown":
                    self.errors.append(msg["params"]["exceptionDetails"].get("exception", {}).get("description", "?"))
                if msg.get("id") == i: return msg
        return self.loop.run_until_complete(asyncio.wait_for(call(), 60))

    def js(self, expression):
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)["result"]
        if "exceptionDetails" in res: raise AssertionError(f"{expression}\n{res['exceptionDetails']}")
        return res["result"].get("value")


NOTEBOOK = ("(window.jupyterapp && jupyterapp.shell.currentWidget && jupyterapp.shell.currentWidget.content ? "
            "jupyterapp.shell.currentWidget : null)")
KERNEL_IDLE = ("(() => { const nb = NB; const k = nb && nb.sessionContext.session && nb.sessionContext.session.kernel; "
               "return !!k && k.status === 'idle'; })()").replace("NB", NOTEBOOK)
CODE_CELLS = "NB.content.widgets.filter(c => c.model.type === 'code')".replace("NB", NOTEBOOK)
ALL_RAN = f"({CODE_CELLS}.every(c => c.model.executionCount !== null) && {KERNEL_IDLE})"
ERRORS = f"{CODE_CELLS}.flatMap(c => c.model.outputs.toJSON()).filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue)"


def test_experiment1_in_jupyterlab(tmp_path):
    work = tmp_path / "nb"; work.mkdir()
    shutil.copy(ROOT / "nbs/experiments/01_experiment1.ipynb", work)  # a copy: JupyterLab saves what it opens
    env = {**os.environ, "LMLAB_MODE": "quick", "LMLAB_RUNS": str(tmp_path / "runs"), "LMLAB_CACHE": str(tmp_path / "cache"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    port, debug_port, token = free_port(), free_port(), "lmlab-test"
    root = ["--allow-root"] if os.geteuid() == 0 else []  # CI containers often run as root
    lab = subprocess.Popen([BIN / "jupyter-lab", "--no-browser", f"--port={port}", f"--IdentityProvider.token={token}",
                            f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True", *root],
                           env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "w"))
    browser = None
    try:
        base = f"http://127.0.0.1:{port}"
        def up():
            try: return urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).status == 200
            except OSError: return False
        wait_for("JupyterLab to start", up, 90)
        browser = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--remote-debugging-port={debug_port}",
                                    "--remote-allow-origins=*", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000",
                                    f"{base}/lab/tree/01_experiment1.ipynb?token={token}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        def page_target():
            try: targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{debug_port}/json/list", timeout=2))
            except OSError: return None
            return next((t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page" and "/lab" in t["url"]), None)
        page = Page(wait_for("Chromium's page", page_target, 60))
        page.send("Runtime.enable")
        wait_for("the notebook and its kernel", lambda: page.js(KERNEL_IDLE), 120)

        page.js("jupyterapp.commands.execute('notebook:run-all-cells')")
        wait_for("Run All to finish", lambda: page.js(ALL_RAN), 300)
        assert page.js(ERRORS) == [], page.js(ERRORS)
        assert (tmp_path / "runs/experiment1-quick/config.json").exists()  # the notebook's own run, where LMLAB_RUNS says

        # the form: change a value as a person would (type into the box, leave it), then press Train
        form_row = "[...document.querySelectorAll('.widget-inline-hbox')].find(e => e.querySelector('.widget-label') && " \
                   "e.querySelector('.widget-label').textContent.trim() === 'warmup_steps')"
        wait_for("the form", lambda: page.js(f"!!({form_row})"), 30)
        page.js(f"""(() => {{ const input = {form_row}.querySelector('input'); input.focus(); input.value = '2';
            input.dispatchEvent(new Event('input', {{bubbles: true}})); input.dispatchEvent(new Event('change', {{bubbles: true}}));
            input.blur(); }})()""")
        page.js("[...document.querySelectorAll('button')].find(b => b.textContent.trim() === 'Train').click()")
        run = tmp_path / "runs/experiment1-widgets-quick"
        wait_for("the run directory of the form's run", lambda: (run / "metrics.jsonl").exists(), 120)
        assert json.loads((run / "config.json").read_text())["train"]["warmup_steps"] == 2  # the changed value reached the run
        plot = "document.querySelectorAll('.jupyter-widgets-output-area img, .widget-output img').length"
        wait_for("the run's plot in the notebook", lambda: page.js(plot), 120)
        wait_for("the kernel to finish the run", lambda: page.js(KERNEL_IDLE), 120)
        assert page.js(ERRORS) == [], page.js(ERRORS)
        assert not page.errors, page.errors
    finally:
        for proc in (browser, lab):
            if proc is not None: proc.terminate()
        for proc in (browser, lab):
            if proc is not None:
                try: proc.wait(timeout=20)
                except subprocess.TimeoutExpired: proc.kill()
