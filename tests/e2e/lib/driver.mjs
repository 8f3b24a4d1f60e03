// A small WebDriver client for the end-to-end tests: plain Node 20 ESM over the
// global fetch, talking to tauri-driver (which forwards to WebKitWebDriver).
// Nothing here downloads anything. Run the suites with tests/e2e/run.sh.
//
//   import { launchApp, tempDb } from "./lib/driver.mjs";
//   const db = tempDb();
//   const app = await launchApp({ db });
//   await app.waitFor("signin-username");
//   ...
//   await app.quit();
//
// Elements are addressed by their data-testid. Element handles returned by
// waitFor/all are opaque objects for textOf/attr/clickEl.

import { mkdtempSync, mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir, homedir } from "node:os";
import { execFileSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const DRIVER_URL = process.env.TAURI_DRIVER_URL ?? "http://127.0.0.1:4444";
const ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf";
const DEFAULT_TIMEOUT = 15_000;
const POLL_MS = 100;
const HERE = dirname(fileURLToPath(import.meta.url));
export const ARTIFACTS_DIR = resolve(HERE, "..", "artifacts");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A fresh path for a SQLite database in a new directory under os.tmpdir(). */
export function tempDb() {
  const dir = mkdtempSync(join(tmpdir(), "clinic-e2e-"));
  return join(dir, "clinic.db");
}

/** The app binary under test: $CLINIC_APP_BINARY or $CARGO_TARGET_DIR/debug/clinic-workstation. */
export function appBinary() {
  if (process.env.CLINIC_APP_BINARY) return resolve(process.env.CLINIC_APP_BINARY);
  const target =
    process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache", "clinic-workstation", "target");
  return join(target, "debug", "clinic-workstation");
}

/** One WebDriver request; returns `value` or throws an Error naming the command. */
async function wd(method, path, body, { timeout = 60_000, driverUrl = DRIVER_URL } = {}) {
  let res;
  try {
    res = await fetch(driverUrl + path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeout),
    });
  } catch (e) {
    throw new Error(`WebDriver ${method} ${path}: ${e.cause?.message ?? e.message} (is tauri-driver running on ${driverUrl}?)`);
  }
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    throw new Error(`WebDriver ${method} ${path}: HTTP ${res.status}, not JSON: ${text.slice(0, 300)}`);
  }
  const value = json.value;
  if (!res.ok || (value && typeof value === "object" && "error" in value && value.error)) {
    const err = new Error(`WebDriver ${method} ${path}: ${value?.error ?? res.status}: ${value?.message ?? text.slice(0, 300)}`);
    err.webdriverError = value?.error;
    throw err;
  }
  return value;
}

/** PIDs of processes whose command line contains `needle` (never this process). */
function pidsWithCmdline(needle) {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (cmd.includes(needle)) pids.push(Number(entry));
    } catch {
      // the process went away
    }
  }
  return pids;
}

const selector = (testid) => `[data-testid="${String(testid).replace(/(["\\])/g, "\\$1")}"]`;
const handle = (id) => ({ [ELEMENT_KEY]: id });
const idOf = (el) => {
  const id = el?.[ELEMENT_KEY];
  if (!id) throw new Error(`not an element handle: ${JSON.stringify(el)}`);
  return id;
};

class App {
  constructor(sessionId, db, driverUrl = DRIVER_URL) {
    this.sessionId = sessionId;
    this.db = db;
    this.driverUrl = driverUrl;
    this.closed = false;
  }

  /** A WebDriver request to this app's tauri-driver. */
  #wd(method, path, body, opts = {}) {
    return wd(method, path, body, { ...opts, driverUrl: this.driverUrl });
  }

  #s(path) {
    return `/session/${this.sessionId}${path}`;
  }

  async #find(testid) {
    const els = await this.#wd("POST", this.#s("/elements"), { using: "css selector", value: selector(testid) });
    return els.map((e) => handle(e[ELEMENT_KEY]));
  }

  async #displayed(el) {
    try {
      return Boolean(await this.#wd("GET", this.#s(`/element/${idOf(el)}/displayed`)));
    } catch (e) {
      if (e.webdriverError === "stale element reference" || e.webdriverError === "no such element") return false;
      throw e;
    }
  }

  /** Wait until [data-testid=testid] is displayed; returns its element handle. */
  async waitFor(testid, { timeout = DEFAULT_TIMEOUT } = {}) {
    const deadline = Date.now() + timeout;
    let seen = 0;
    for (;;) {
      const els = await this.#find(testid);
      seen = els.length;
      for (const el of els) {
        if (await this.#displayed(el)) return el;
      }
      if (Date.now() >= deadline) {
        throw new Error(`waitFor("${testid}"): not displayed within ${timeout} ms (${seen} in the DOM)`);
      }
      await sleep(POLL_MS);
    }
  }

  /** Wait until no [data-testid=testid] is displayed. */
  async waitForGone(testid, { timeout = DEFAULT_TIMEOUT } = {}) {
    const deadline = Date.now() + timeout;
    for (;;) {
      let visible = false;
      for (const el of await this.#find(testid)) visible ||= await this.#displayed(el);
      if (!visible) return;
      if (Date.now() >= deadline) throw new Error(`waitForGone("${testid}"): still displayed after ${timeout} ms`);
      await sleep(POLL_MS);
    }
  }

  /** Retry an element action when the UI re-rendered the element under us. */
  async #withElement(testid, opts, fn) {
    const deadline = Date.now() + (opts?.timeout ?? DEFAULT_TIMEOUT);
    for (;;) {
      const el = await this.waitFor(testid, opts);
      try {
        return await fn(el);
      } catch (e) {
        const retry = e.webdriverError === "stale element reference" || e.webdriverError === "element click intercepted" || e.webdriverError === "element not interactable";
        if (!retry || Date.now() >= deadline) throw e;
        await sleep(POLL_MS);
      }
    }
  }

  async click(testid, opts) {
    await this.#withElement(testid, opts, (el) => this.clickEl(el));
  }

  async clickEl(el) {
    try {
      await this.#wd("POST", this.#s(`/element/${idOf(el)}/click`), {});
    } catch (e) {
      // WebKitWebDriver refuses to click some displayed elements, e.g. a <tr>
      // ("element not interactable"). Click the middle of its box with the
      // mouse instead, as a user would (the event hits a cell and bubbles up).
      if (e.webdriverError !== "element not interactable" || !(await this.#displayed(el))) throw e;
      const box = await this.execute(
        `const r = arguments[0]; r.scrollIntoView({ block: "center", inline: "center" });
         const b = r.getBoundingClientRect();
         return { x: Math.round(b.left + b.width / 2), y: Math.round(b.top + b.height / 2), w: b.width, h: b.height };`,
        el,
      );
      if (!box || box.w === 0 || box.h === 0) throw e;
      await this.#wd("POST", this.#s("/actions"), {
        actions: [
          {
            type: "pointer",
            id: "mouse",
            parameters: { pointerType: "mouse" },
            actions: [
              { type: "pointerMove", duration: 0, origin: "viewport", x: box.x, y: box.y },
              { type: "pointerDown", button: 0 },
              { type: "pointerUp", button: 0 },
            ],
          },
        ],
      });
      await this.#wd("DELETE", this.#s("/actions")).catch(() => {});
    }
  }

  /** Clear the input, then type `text` (fires input events, so bound state follows). */
  async type(testid, text, opts) {
    await this.#withElement(testid, opts, async (el) => {
      const id = idOf(el);
      // WebKitWebDriver calls a field at the edge of a scrolled area "not
      // interactable" instead of scrolling to it: scroll it to the middle,
      // as a user would.
      await this.execute("arguments[0].scrollIntoView({ block: 'center', inline: 'nearest' });", el);
      await this.#wd("POST", this.#s(`/element/${id}/clear`), {});
      await this.execute("arguments[0].dispatchEvent(new Event('input', { bubbles: true }));", el);
      if (String(text) !== "") await this.#wd("POST", this.#s(`/element/${id}/value`), { text: String(text) });
    });
  }

  /** Choose the <option> with this value in a <select>; fires input and change. */
  async select(testid, value, opts) {
    await this.#withElement(testid, opts, (el) =>
      this.execute(
        `const [el, v] = arguments;
         if (!Array.from(el.options ?? []).some((o) => o.value === v)) {
           throw new Error("no option with value " + JSON.stringify(v) + " in select");
         }
         el.value = v;
         el.dispatchEvent(new Event("input", { bubbles: true }));
         el.dispatchEvent(new Event("change", { bubbles: true }));`,
        el,
        String(value),
      ),
    );
  }

  /** Visible text of the displayed [data-testid=testid]. */
  async text(testid, opts) {
    return this.#withElement(testid, opts, (el) => this.textOf(el));
  }

  async textOf(el) {
    const text = await this.#wd("GET", this.#s(`/element/${idOf(el)}/text`));
    // WebKitWebDriver answers "" for some ARIA roles (e.g. role="option");
    // the rendered text is what a person reads, so fall back to innerText.
    return text || this.execute("return arguments[0].innerText;", el);
  }

  /** Attribute value (null when absent); "value" and "checked" read the live property. */
  async attr(el, name) {
    const kind = name === "value" || name === "checked" ? "property" : "attribute";
    return this.#wd("GET", this.#s(`/element/${idOf(el)}/${kind}/${encodeURIComponent(name)}`));
  }

  /** Every [data-testid=testid] in the DOM now (no waiting), in document order. */
  async all(testid) {
    return this.#find(testid);
  }

  /** Whether any [data-testid=testid] is in the DOM now (no waiting). */
  async exists(testid) {
    return (await this.#find(testid)).length > 0;
  }

  /** Wait until the text of [data-testid=testid] matches (RegExp) or contains (string). */
  async waitForText(testid, expected, { timeout = DEFAULT_TIMEOUT } = {}) {
    const deadline = Date.now() + timeout;
    const matches = (t) => (expected instanceof RegExp ? expected.test(t) : t.includes(String(expected)));
    let last = "<not displayed>";
    for (;;) {
      const els = await this.#find(testid);
      for (const el of els) {
        try {
          if (!(await this.#displayed(el))) continue;
          last = await this.textOf(el);
          if (matches(last)) return last;
        } catch (e) {
          if (e.webdriverError !== "stale element reference") throw e;
        }
      }
      if (Date.now() >= deadline) {
        throw new Error(`waitForText("${testid}", ${expected}): last text ${JSON.stringify(last)} after ${timeout} ms`);
      }
      await sleep(POLL_MS);
    }
  }

  /** Move or resize the window ({x, y, width, height}, any subset). */
  async setRect(rect) {
    return this.#wd("POST", this.#s("/window/rect"), rect, { timeout: 10_000 });
  }

  /** Run a synchronous script in the page; element handles may be passed as args. */
  async execute(script, ...args) {
    return this.#wd("POST", this.#s("/execute/sync"), { script, args });
  }

  /**
   * Save a PNG screenshot of the window. With WEBKIT_DISABLE_COMPOSITING_MODE=1
   * (as tests/e2e/run.sh sets) WebKitWebDriver's screenshot command hangs, so
   * the window's area is grabbed from the X display with ImageMagick instead.
   */
  async screenshot(path) {
    mkdirSync(dirname(resolve(path)), { recursive: true });
    if (process.env.WEBKIT_DISABLE_COMPOSITING_MODE && process.env.DISPLAY) {
      let crop = [];
      try {
        const r = await this.#wd("GET", this.#s("/window/rect"), undefined, { timeout: 5_000 });
        crop = ["-crop", `${r.width}x${r.height}+${Math.max(0, r.x)}+${Math.max(0, r.y)}`, "+repage"];
      } catch {
        // whole screen then
      }
      execFileSync("import", ["-window", "root", ...crop, path], { stdio: ["ignore", "ignore", "pipe"], timeout: 15_000 });
      return path;
    }
    const b64 = await this.#wd("GET", this.#s("/screenshot"), undefined, { timeout: 15_000 });
    writeFileSync(path, Buffer.from(b64, "base64"));
    return path;
  }

  /** Screenshot to tests/e2e/artifacts/<name>.png; never throws (use in a catch/after hook). */
  async failed(name) {
    const path = join(ARTIFACTS_DIR, `${String(name).replace(/[^\w.-]+/g, "_")}.png`);
    try {
      await this.screenshot(path);
      console.error(`screenshot: ${path}`);
    } catch (e) {
      console.error(`screenshot for ${name} failed: ${e.message}`);
    }
    return path;
  }

  /** PIDs of the app process(es) launched for this database. */
  pids() {
    return pidsWithCmdline(this.db);
  }

  /** SIGKILL the app (like a power cut) and end the WebDriver session. */
  async killHard() {
    for (const pid of this.pids()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await this.#waitExited(5_000);
    await this.#endSession();
  }

  /** End the session, closing the app; make sure the process is gone. */
  async quit() {
    await this.#endSession();
    if (!(await this.#waitExited(5_000))) {
      for (const pid of this.pids()) {
        try {
          process.kill(pid, "SIGTERM");
        } catch {
          // already gone
        }
      }
      if (!(await this.#waitExited(3_000))) {
        for (const pid of this.pids()) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // already gone
          }
        }
        await this.#waitExited(3_000);
      }
    }
  }

  async #endSession() {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.#wd("DELETE", `/session/${this.sessionId}`, undefined, { timeout: 10_000 });
    } catch {
      // the app may already be gone; the driver cleans the session up
    }
  }

  async #waitExited(timeout) {
    const deadline = Date.now() + timeout;
    while (this.pids().length > 0) {
      if (Date.now() >= deadline) return false;
      await sleep(50);
    }
    return true;
  }
}

/**
 * Start the app in a new WebDriver session.
 * @param {{db?: string, args?: string[], binary?: string, timeout?: number, driverUrl?: string}} [options]
 *   db: SQLite path passed as `--db` (default: a fresh tempDb()); args: extra app arguments;
 *   driverUrl: the tauri-driver to use (default $TAURI_DRIVER_URL); a second app at the same
 *   time needs a driver of its own ($TAURI_DRIVER_URL_2 from tests/e2e/run.sh).
 */
export async function launchApp({ db = tempDb(), args = [], binary = appBinary(), timeout = 60_000, driverUrl = DRIVER_URL } = {}) {
  if (!existsSync(binary)) {
    throw new Error(`app binary not found: ${binary} (build it: ui/node_modules/.bin/tauri build --debug --no-bundle, or set CLINIC_APP_BINARY)`);
  }
  const session = await wd(
    "POST",
    "/session",
    { capabilities: { alwaysMatch: { "tauri:options": { application: binary, args: ["--db", db, ...args] } } } },
    { timeout, driverUrl },
  );
  return new App(session.sessionId, db, driverUrl);
}
